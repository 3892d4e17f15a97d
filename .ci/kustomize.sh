#!/usr/bin/env bash
# Fetches kustomize from Debian trixie (a static Go binary that runs on
# bookworm) into .tmp/kustomize/<version>/ so shared/test/k8s-manifests.test.ts
# can build k8s/ with it (see debian-fetch.sh for how).
# Prints the binary's path on success; prints why and exits 1 otherwise.
exec bash "$(dirname "$0")/debian-fetch.sh" kustomize usr/bin/kustomize version "${KUSTOMIZE_SUITE:-trixie}"
