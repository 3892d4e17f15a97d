#!/usr/bin/env bash
# Fetches kustomize from Debian trixie (a static Go binary that runs on
# bookworm) into .tmp/kustomize/<version>/ so shared/test/k8s-manifests.test.ts
# can build k8s/ with it. The machine's apt state is left alone: a scratch
# sources.list names trixie on the same archive the machine's own apt sources
# use (read from them at run time, never written down in the repository),
# with scratch lists and cache dirs.
#
# Prints the binary's path on success; prints why and exits 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=.tmp/kustomize
mkdir -p "$OUT"
existing=$(find "$OUT" -path '*/usr/bin/kustomize' -type f 2>/dev/null | sort -V | tail -n 1)
if [ -n "$existing" ] && "$existing" version >/dev/null 2>&1; then
  echo "$(pwd)/$existing"
  exit 0
fi

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

scratch=$(pwd)/.tmp/apt-kustomize
rm -rf "$scratch"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/lists/partial" "$scratch/cache/archives/partial" "$scratch/parts" "$scratch/dl"
echo "deb ${signed}${archive} ${KUSTOMIZE_SUITE:-trixie} main" >"$scratch/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$scratch/sources.list"
  -o "Dir::Etc::SourceParts=$scratch/parts"
  -o "Dir::State::Lists=$scratch/lists"
  -o "Dir::Cache=$scratch/cache"
  -o "Dir::State::status=/dev/null"
  -o "APT::Get::List-Cleanup=0"
)
if ! apt-get -qq "${apt_opts[@]}" update >"$scratch/update.log" 2>&1; then
  echo "apt-get update failed: $(tail -n 3 "$scratch/update.log")" >&2
  exit 1
fi
version=$(apt-cache "${apt_opts[@]}" show kustomize 2>/dev/null | awk '/^Version:/ { print $2; exit }')
if [ -z "$version" ]; then
  echo "no kustomize package in ${KUSTOMIZE_SUITE:-trixie}" >&2
  exit 1
fi
if ! (cd "$scratch/dl" && apt-get -qq "${apt_opts[@]}" download "kustomize=$version") \
  >"$scratch/download.log" 2>&1; then
  echo "download of kustomize $version failed: $(tail -n 3 "$scratch/download.log")" >&2
  exit 1
fi
dest="$OUT/$version"
rm -rf "$dest"
dpkg-deb -x "$scratch/dl"/kustomize_*.deb "$dest"
bin="$dest/usr/bin/kustomize"
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
  echo "$(pwd)/$bin"
  exit 0
fi
echo "kustomize $version does not run here" >&2
rm -rf "$dest"
exit 1
