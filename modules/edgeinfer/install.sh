#!/bin/sh
# Build-stage helper shared by every Dockerfile here. Three steps, each its own image layer, so that a
# code change rebuilds in seconds (the dependencies' layer stays cached):
#   install.sh deps SRC EXTRAS ORT_PACKAGE [extra pip arguments for ORT_PACKAGE, e.g. --extra-index-url URL]
#       one virtualenv at $VENV with edgeinfer's dependencies (from SRC/pyproject.toml alone: the package
#       itself is not installed), the ONNX Runtime build the platform needs, and a .pth putting $CODE on
#       sys.path
#   install.sh code SRC      edgeinfer itself (a wheel of SRC, no dependencies) into $CODE, then an import check
#   install.sh strip         removes pip/setuptools/wheel from the virtualenv (the final stage copies it and $CODE
#                            only: no compilers, no package tools)
# PIP_CACHE_DIR (a build argument) keeps downloaded wheels in a cache mounted into the build; without it
# nothing is cached.
set -eu
venv=${VENV:-/opt/venv}
code=${CODE:-/opt/edgeinfer}
step=$1
shift
pip="$venv/bin/python -m pip --disable-pip-version-check"
[ -n "${PIP_CACHE_DIR:-}" ] || pip="$pip --no-cache-dir"

case $step in
deps)
    src=$1 extras=$2 ort=$3
    shift 3
    python3 -m venv ${VENV_FLAGS:-} "$venv"
    $pip install --upgrade pip setuptools wheel
    # the dependencies as pyproject.toml names them, through a stub of the package (uninstalled after)
    stub=$(mktemp -d)
    cp "$src/pyproject.toml" "$src/README.md" "$stub/"
    mkdir -p "$stub/components/edgeinfer"
    : > "$stub/components/edgeinfer/__init__.py"
    $pip install "$stub[$extras]"
    $pip uninstall --yes edgeinfer
    rm -rf "$stub"
    if [ "$ort" != "onnxruntime" ]; then
        # onnxruntime-gpu cannot share an environment with onnxruntime (docs/backends.md)
        $pip uninstall --yes onnxruntime
        $pip install "$@" "$ort"
    fi
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "$code" > "$site/edgeinfer-code.pth"
    ;;
code)
    src=$1
    $pip install --no-deps --no-build-isolation --target "$code" "$src"
    "$venv/bin/python" -c "import edgeinfer.azure, onnxruntime; print('edgeinfer', edgeinfer.__version__, \
'onnxruntime', onnxruntime.__version__, onnxruntime.get_available_providers())"
    ;;
strip)
    $pip uninstall --yes pip setuptools wheel
    ;;
*)
    echo "usage: install.sh deps|code|strip ..." >&2
    exit 2
    ;;
esac
