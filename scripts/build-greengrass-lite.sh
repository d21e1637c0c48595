#!/usr/bin/env bash
# Build AWS IoT Greengrass Lite (Apache-2.0) from a source snapshot into the cache, for the real-nucleus
# test tier (tests/greengrass_lite). Nothing is downloaded from GitHub: the snapshot holds everything.
#
#   scripts/build-greengrass-lite.sh SNAPSHOT_DIR
#
# SNAPSHOT_DIR/aws-greengrass-lite   Lite's source (a release tag, e.g. v2.6.0)
# SNAPSHOT_DIR/<name>                one folder per dependency its fc_deps.json lists, named as there
#                                    (core_mqtt, aws_sigv4, gg_sdk, unity at v2.6.0), each at the pinned rev
#
# Output: ${EDGEINFER_CACHE_DIR:-<repo>/.cache}/greengrass-lite/{bin,lib,...} and BUILD-INFO (version, sources).
# As root on Debian/Ubuntu the build packages are installed with apt-get; otherwise the missing ones are named.
# Lite's source and binaries are never part of the edgeinfer repository.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
snapshot=${1:?usage: scripts/build-greengrass-lite.sh SNAPSHOT_DIR (see the header of this script)}
snapshot=$(cd "$snapshot" && pwd)
src=$snapshot/aws-greengrass-lite
cache=${EDGEINFER_CACHE_DIR:-$here/.cache}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
prefix=$cache/greengrass-lite
build=$cache/greengrass-lite-build

[ -f "$src/fc_deps.json" ] || { echo "no $src/fc_deps.json: SNAPSHOT_DIR must hold aws-greengrass-lite/" >&2; exit 1; }

# -- Debian build packages (the list Lite's docs/BUILD.md names, as Debian spells them) --------------------------
packages=(build-essential pkg-config cmake ninja-build libssl-dev libcurl4-openssl-dev libsqlite3-dev libyaml-dev
          libsystemd-dev libevent-dev liburiparser-dev uuid-dev libzip-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing build packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing build packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# -- one FETCHCONTENT_SOURCE_DIR_<NAME> per dependency in fc_deps.json ----------------------------------------
mapfile -t deps < <(python3 -c 'import json,sys; [print(k) for k in json.load(open(sys.argv[1]))]' "$src/fc_deps.json")
fc_args=()
for name in "${deps[@]}"; do
  dir=$snapshot/$name
  [ -f "$dir/CMakeLists.txt" ] || [ -d "$dir/source" ] || [ -d "$dir/src" ] || {
    rev=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["rev"])' "$src/fc_deps.json" "$name")
    echo "dependency $name missing: put its source at rev $rev in $dir" >&2; exit 1; }
  fc_args+=("-DFETCHCONTENT_SOURCE_DIR_${name^^}=$dir")
done

# -- configure, build, install into the cache -------------------------------------------------------------------
rm -rf "$build" "$prefix"
start=$(date +%s)
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=MinSizeRel -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DFETCHCONTENT_FULLY_DISCONNECTED=ON -DGGL_SYSTEMD_SYSTEM_DIR=lib/systemd/system "${fc_args[@]}" >"$cache/greengrass-lite-cmake.log"
cmake --build "$build" -j "$(nproc)" >"$cache/greengrass-lite-build.log"
cmake --install "$build" >"$cache/greengrass-lite-install.log"
took=$(( $(date +%s) - start ))

{
  echo "version=$(tr -d '[:space:]' < "$src/version")"
  echo "source=$src"
  for name in "${deps[@]}"; do echo "dep.$name=$snapshot/$name"; done
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$took"
} >"$prefix/BUILD-INFO"
for bin in ggconfigd ggpubsubd ggipcd iotcored; do
  [ -x "$prefix/bin/$bin" ] || { echo "build finished without $prefix/bin/$bin" >&2; exit 1; }
done
echo "Greengrass Lite $(tr -d '[:space:]' < "$src/version") built in ${took}s into $prefix" >&2
