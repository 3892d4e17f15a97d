#!/usr/bin/env bash
# Fetches a current nats-server from Debian (sid, else trixie) into
# .tmp/nats-server/<version>/ so the fault tests also run on a server without
# 2.9's replica-divergence bugs. The machine's apt state is left alone: a
# scratch sources.list names the newer suites on the same archive the
# machine's own apt sources use (read from them here, never written down in
# the repository), with scratch lists and cache dirs.
#
# Prints the binary's path on success; prints why and exits 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=.tmp/nats-server
mkdir -p "$OUT"
existing=$(find "$OUT" -path '*/usr/*bin/nats-server' -type f 2>/dev/null | sort -V | tail -n 1)
if [ -n "$existing" ] && "$existing" --version >/dev/null 2>&1; then
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

scratch=$(pwd)/.tmp/apt
rm -rf "$scratch"
mkdir -p "$scratch/lists/partial" "$scratch/cache/archives/partial" "$scratch/parts" "$scratch/dl"
for suite in ${NEWER_NATS_SUITES:-sid trixie}; do
  echo "deb ${signed}${archive} ${suite} main" >"$scratch/sources.list"
  apt_opts=(
    -o "Dir::Etc::SourceList=$scratch/sources.list"
    -o "Dir::Etc::SourceParts=$scratch/parts"
    -o "Dir::State::Lists=$scratch/lists"
    -o "Dir::Cache=$scratch/cache"
    -o "Dir::State::status=/dev/null"
    -o "APT::Get::List-Cleanup=0"
  )
  rm -rf "$scratch/lists"/* "$scratch/cache"/*.bin
  mkdir -p "$scratch/lists/partial"
  if ! apt-get -qq "${apt_opts[@]}" update >"$scratch/update.log" 2>&1; then
    echo "apt-get update for $suite failed: $(tail -n 3 "$scratch/update.log")" >&2
    continue
  fi
  # sid drops superseded versions, so take whatever version the index names now.
  version=$(apt-cache "${apt_opts[@]}" show nats-server 2>/dev/null |
    awk '/^Version:/ { print $2; exit }')
  if [ -z "$version" ]; then
    echo "no nats-server in $suite" >&2
    continue
  fi
  rm -f "$scratch/dl"/*.deb
  if ! (cd "$scratch/dl" && apt-get -qq "${apt_opts[@]}" download "nats-server=$version") \
    >"$scratch/download.log" 2>&1; then
    echo "download of nats-server $version ($suite) failed: $(tail -n 3 "$scratch/download.log")" >&2
    continue
  fi
  dest="$OUT/$version"
  rm -rf "$dest"
  dpkg-deb -x "$scratch/dl"/nats-server_*.deb "$dest"
  bin=$(find "$dest" -path '*/usr/*bin/nats-server' -type f | head -n 1)
  if [ -n "$bin" ] && "$bin" --version >/dev/null 2>&1; then
    rm -rf "$scratch"
    echo "$(pwd)/$bin"
    exit 0
  fi
  echo "nats-server $version ($suite) does not run here" >&2
  rm -rf "$dest"
done
rm -rf "$scratch"
echo "no newer nats-server could be fetched" >&2
exit 1
