"""The hosts the inference component ships for: one manifest each, all rendered from one template.

Greengrass picks the FIRST manifest whose ``Platform`` matches the device, so GPU hosts come before
the plain CPU ones. ``com.edgeinfer.accelerator`` is a custom platform attribute: set it on a GPU core
device with the nucleus option ``platformOverride: {"com.edgeinfer.accelerator": "nvidia"}``
(see docs/greengrass.md).

Greengrass Lite selects only manifests whose Platform names a ``runtime`` (``aws_nucleus_lite`` or ``*``) and
ignores custom attributes. So the CPU manifests say ``runtime: "*"`` (every nucleus) and the GPU ones name
none (Java nucleus only): otherwise Lite would take the first GPU manifest of its architecture on any host.
"""

from __future__ import annotations

from dataclasses import dataclass

ACCELERATOR_ATTRIBUTE = "com.edgeinfer.accelerator"
#: Greengrass architecture -> the machine name in wheel tags and ``platform_machine`` markers.
MACHINES = {"amd64": "x86_64", "aarch64": "aarch64"}
#: Other spellings people type for the platform keys (``uname -m`` style).
ALIASES = {"linux-x86_64": "linux-amd64", "linux-x86_64-nvidia": "linux-amd64-nvidia", "linux-arm64": "linux-aarch64"}


@dataclass(frozen=True, slots=True)
class Platform:
    key: str  # names the runtime artifact: edgeinfer-runtime-<key>.zip
    os: str
    architecture: str
    accelerator: str | None  # custom platform attribute; None = any host of this os/architecture
    extras: str  # default pip extras of the runtime bundle (edgeinfer greengrass bundle)
    gpu_runtime: bool  # the bundle ships onnxruntime-gpu in place of onnxruntime (they cannot share a venv)
    system_site_packages: bool  # see the host's TensorRT / CUDA Python bindings (JetPack installs them there)
    description: str

    def platform_block(self) -> dict[str, str]:
        block = {"os": self.os, "architecture": self.architecture}
        if self.accelerator:
            block[ACCELERATOR_ATTRIBUTE] = self.accelerator
        else:
            block["runtime"] = "*"  # Greengrass Lite too
        return block

    @property
    def machine(self) -> str:
        return MACHINES[self.architecture]


PLATFORMS: tuple[Platform, ...] = (
    Platform("linux-amd64-nvidia", "linux", "amd64", "nvidia", "aws,gpu", True, False,
             "x86_64 Linux with an NVIDIA GPU (CUDA 12+ driver): onnxruntime-gpu"),
    Platform("linux-aarch64-jetson", "linux", "aarch64", "nvidia", "aws,gpu", True, True,
             "NVIDIA Jetson (JetPack 6): onnxruntime-gpu for Jetson, JetPack's TensorRT"),
    Platform("linux-amd64", "linux", "amd64", None, "aws,tflite", False, False, "x86_64 Linux, CPU"),
    Platform("linux-aarch64", "linux", "aarch64", None, "aws,tflite", False, False, "64-bit Arm Linux, CPU"),
)


def runtime_artifact_name(platform: Platform) -> str:
    """File name of the runtime wheelhouse ZIP for a platform (unpacks to a folder of the same stem)."""
    return f"edgeinfer-runtime-{platform.key}.zip"


def select(keys: list[str] | None) -> tuple[Platform, ...]:
    """The platforms named (all when none; aliases such as linux-x86_64 accepted), in manifest order;
    RecipeError for an unknown key."""
    if not keys:
        return PLATFORMS
    keys = [ALIASES.get(k, k) for k in keys]
    if unknown := sorted(set(keys) - {p.key for p in PLATFORMS}):
        from ..errors import RecipeError

        raise RecipeError(f"unknown platform(s) {unknown}", f"use {', '.join(p.key for p in PLATFORMS)}")
    return tuple(p for p in PLATFORMS if p.key in keys)
