#!/usr/bin/env bash
# Make sure the system tools a target needs are present. Installs them with apt-get when running as
# root on Debian/Ubuntu; otherwise says exactly what is missing and how to install it, and fails.
#   scripts/bootstrap.sh python        python3 with venv + pip (make demo, make test)
#   scripts/bootstrap.sh test          + mosquitto (telemetry tests), node/npm (CDK synth) and GStreamer's
#                                      RTSP server for the system python3 (the RTSP camera in tests/faults),
#                                      buildah + mmdebstrap (the IoT Edge module image, built and run in
#                                      tests/image; that tier also needs root and skips without it), and
#                                      chromium (the status page in a real headless browser, tests/serve)
set -euo pipefail
what=${1:-python}
missing=()   # Debian package names
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }

need_cmd python3 python3
if command -v python3 >/dev/null 2>&1; then
  python3 -c 'import sys; assert sys.version_info >= (3, 10)' 2>/dev/null || {
    echo "edgeinfer needs Python >= 3.10; found $(python3 --version 2>&1)" >&2; exit 1; }
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=("python3-venv")
fi
if [ "$what" = test ]; then
  need_cmd mosquitto mosquitto
  need_cmd node nodejs
  need_cmd npm npm
  need_cmd buildah buildah
  need_cmd mmdebstrap mmdebstrap
  need_cmd chromium chromium
  # The test RTSP camera runs on the system python (the venv cannot import gi): PyGObject + GstRtspServer
  # + the JPEG/RTP elements of plugins-good.
  /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer' \
    >/dev/null 2>&1 || missing+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's mosquitto package starts a broker on :1883; the tests start their own on free ports.
  exit 0
fi
echo "missing system packages: ${missing[*]}" >&2
echo "install them with: sudo apt-get install ${missing[*]}   (then run the make target again)" >&2
exit 1
