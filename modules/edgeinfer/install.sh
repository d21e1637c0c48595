#!/bin/sh
# Build-stage helper shared by every Dockerfile here: one virtualenv at $VENV with edgeinfer and its
# IoT Edge extras, the ONNX Runtime build the platform needs, and no pip/setuptools/wheel left behind
# (the final stage copies only the virtualenv: no compilers, no package tools).
#   install.sh SRC EXTRAS ORT_PACKAGE [extra pip arguments for ORT_PACKAGE, e.g. --extra-index-url URL]
set -eu
src=$1 extras=$2 ort=$3
shift 3
venv=${VENV:-/opt/venv}
python3 -m venv ${VENV_FLAGS:-} "$venv"
pip="$venv/bin/python -m pip --no-cache-dir --disable-pip-version-check"
$pip install --upgrade pip
$pip install "$src[$extras]"
if [ "$ort" != "onnxruntime" ]; then
    # onnxruntime-gpu cannot share an environment with onnxruntime (docs/install.md)
    $pip uninstall --yes onnxruntime
    $pip install "$@" "$ort"
fi
"$venv/bin/python" -c "import edgeinfer.azure, onnxruntime; print('edgeinfer', edgeinfer.__version__, \
'onnxruntime', onnxruntime.__version__, onnxruntime.get_available_providers())"
$pip uninstall --yes pip setuptools wheel
