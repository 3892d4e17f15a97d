#!/usr/bin/env bash
# Fetches one binary from a newer Debian suite than this machine's into
# .tmp/<package>/<version>/, for tests that need a newer tool than bookworm
# ships (a current nats-server, kustomize). The machine's apt state is left
# alone: a scratch sources.list names the suite on the same archive the
# machine's own apt sources use (read from them here, never written down in
# the repository), with scratch lists and cache dirs.
#
# Usage: debian-fetch.sh PACKAGE BINARY VERSION_ARG SUITE...
#   BINARY      the file's path inside the package, a find -path pattern
#               (usr/*bin/nats-server: sbin or bin, whichever the suite uses)
#   VERSION_ARG what makes the binary print its version (proves it runs here);
#               empty for a shared library, which is only checked to be there
#   SUITE...    tried in order; a suite may drop superseded versions (sid),
#               so the version is whatever its index names now
# Prints the binary's path on success; prints why and exits 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

package=$1 binary=$2 version_arg=$3
shift 3
OUT=.tmp/$package
mkdir -p "$OUT"
# A library cannot be run on its own: being there is all that is checked.
runs() { [ -z "$version_arg" ] || "$1" "$version_arg" >/dev/null 2>&1; }
existing=$(find "$OUT" -path "*/$binary" -type f 2>/dev/null | sort -V | tail -n 1)
if [ -n "$existing" ] && runs "$existing"; then
  echo "$(pwd)/$existing"
  exit 0
fi

# The archive this machine already uses for Debian's main suite.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
archive=""
keyring=""
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -r "$f" ] || continue
  archive=$(awk -v c="$codename" '$1 == "deb" {
      i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i + 1) == c) { print $i; exit } }' "$f")
  [ -n "$archive" ] && break
done
if [ -z "$archive" ]; then
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    # deb822 stanzas: the first one whose Suites name the machine's codename.
    read -r archive keyring < <(awk -v c="$codename" '
      BEGIN { RS = ""; FS = "\n" }
      {
        uri = ""; suites = ""; key = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { uri = $i; sub(/^URIs:[ \t]*/, "", uri); sub(/[ \t].*/, "", uri) }
          if ($i ~ /^Suites:/) { suites = " " $i " " }
          if ($i ~ /^Signed-By:/) { key = $i; sub(/^Signed-By:[ \t]*/, "", key) }
        }
        if (uri != "" && suites ~ (" " c " ")) { print uri, key; exit }
      }' "$f") || true
    [ -n "$archive" ] && break
  done
fi
if [ -z "$archive" ]; then
  echo "no Debian archive for '$codename' in /etc/apt/sources.list*" >&2
  exit 1
fi
signed=""
if [ -n "$keyring" ] && [ -r "$keyring" ]; then signed="[signed-by=$keyring] "; fi

scratch=$(pwd)/.tmp/apt-$package
rm -rf "$scratch"
trap 'rm -rf "$scratch"' EXIT
for suite in "$@"; do
  rm -rf "$scratch"
  mkdir -p "$scratch/lists/partial" "$scratch/cache/archives/partial" "$scratch/parts" "$scratch/dl"
  echo "deb ${signed}${archive} ${suite} main" >"$scratch/sources.list"
  apt_opts=(
    -o "Dir::Etc::SourceList=$scratch/sources.list"
    -o "Dir::Etc::SourceParts=$scratch/parts"
    -o "Dir::State::Lists=$scratch/lists"
    -o "Dir::Cache=$scratch/cache"
    -o "Dir::State::status=/dev/null"
    -o "APT::Get::List-Cleanup=0"
  )
  if ! apt-get -qq "${apt_opts[@]}" update >"$scratch/update.log" 2>&1; then
    echo "apt-get update for $suite failed: $(tail -n 3 "$scratch/update.log")" >&2
    continue
  fi
  # awk reads to the end: exiting early would SIGPIPE apt-cache, and pipefail
  # would turn that into a failure (seen: exit 141 now and then).
  version=$(apt-cache "${apt_opts[@]}" show "$package" 2>/dev/null |
    awk '/^Version:/ && v == "" { v = $2 } END { print v }')
  if [ -z "$version" ]; then
    echo "no $package in $suite" >&2
    continue
  fi
  if ! (cd "$scratch/dl" && apt-get -qq "${apt_opts[@]}" download "$package=$version") \
    >"$scratch/download.log" 2>&1; then
    echo "download of $package $version ($suite) failed: $(tail -n 3 "$scratch/download.log")" >&2
    continue
  fi
  dest="$OUT/$version"
  rm -rf "$dest"
  dpkg-deb -x "$scratch/dl/${package}_"*.deb "$dest"
  bin=$(find "$dest" -path "*/$binary" -type f -print -quit)
  if [ -n "$bin" ] && runs "$bin"; then
    echo "$(pwd)/$bin"
    exit 0
  fi
  echo "$package $version ($suite) does not run here" >&2
  rm -rf "$dest"
done
echo "no $package could be fetched from: $*" >&2
exit 1
