#!/usr/bin/env bash
# Fetches a current nats-server from Debian (sid, else trixie) into
# .tmp/nats-server/<version>/ so the fault tests also run on a server without
# 2.9's replica-divergence bugs (see debian-fetch.sh for how).
# Prints the binary's path on success; prints why and exits 1 otherwise.
# shellcheck disable=SC2086 # the suites are a list
exec bash "$(dirname "$0")/debian-fetch.sh" nats-server "usr/*bin/nats-server" --version ${NEWER_NATS_SUITES:-sid trixie}
