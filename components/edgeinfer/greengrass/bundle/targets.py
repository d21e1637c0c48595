"""Which wheels fit a device: pip's ``--platform``/``--python-version`` flags and the environment markers of
a target (a Greengrass platform, a CPython version and the oldest glibc the devices run).

pip does not widen ``--platform manylinux_2_28_x86_64`` to older manylinux tags, so every compatible tag is
listed, newest first, as a device's own pip would accept them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..recipes.platforms import Platform
from .errors import BundleError

PYTHON = re.compile(r"^3\.(\d{1,2})$")
GLIBC = re.compile(r"^2\.(\d{1,2})$")
MIN_PYTHON_MINOR = 10  # pyproject: requires-python >= 3.10
#: the oldest glibc minor with a manylinux tag, per machine (aarch64 starts at manylinux2014)
OLDEST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17}
#: the legacy manylinux aliases and the glibc minor each stands for
LEGACY_TAGS = (("manylinux2014", 17), ("manylinux2010", 12), ("manylinux1", 5))


@dataclass(frozen=True, slots=True)
class Target:
    platform: Platform
    python: str = "3.11"
    glibc: str = "2.28"  # Debian 10+, Ubuntu 20.04+, RHEL 8+, Raspberry Pi OS bullseye+, JetPack 5+

    def __post_init__(self) -> None:
        m = PYTHON.match(self.python)
        if not m or int(m.group(1)) < MIN_PYTHON_MINOR:
            raise BundleError(f"--python {self.python!r} is not a CPython version edgeinfer runs on",
                              "use the device's python3 version, 3.10 or later, e.g. --python 3.11")
        g = GLIBC.match(self.glibc)
        if not g or int(g.group(1)) < OLDEST_GLIBC_MINOR[self.platform.machine]:
            raise BundleError(f"--glibc {self.glibc!r} is not a glibc version with manylinux wheels for "
                              f"{self.platform.machine}", "use the devices' glibc (ldd --version), e.g. --glibc 2.28")

    @property
    def python_tag(self) -> str:
        return "cp" + self.python.replace(".", "")

    def platform_tags(self, plain_linux: bool = False) -> list[str]:
        """Every manylinux tag a device with this glibc accepts, newest first; ``linux_<machine>`` too when
        asked (wheels brought with --find-links, e.g. NVIDIA's onnxruntime-gpu for Jetson; PyPI has none)."""
        machine, newest = self.platform.machine, int(self.glibc.split(".")[1])
        tags = [f"manylinux_2_{minor}_{machine}" for minor in range(newest, OLDEST_GLIBC_MINOR[machine] - 1, -1)]
        tags += [f"{alias}_{machine}" for alias, minor in LEGACY_TAGS
                 if OLDEST_GLIBC_MINOR[machine] <= minor <= newest]
        return tags + ([f"linux_{machine}"] if plain_linux else [])

    def pip_args(self, plain_linux: bool = False) -> list[str]:
        """``pip download`` flags selecting binary wheels for this target only."""
        args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python]
        for tag in self.platform_tags(plain_linux):
            args += ["--platform", tag]
        return args

    def markers(self) -> dict[str, str]:
        """PEP 508 marker values on the device (pip evaluates markers for the machine it runs on)."""
        return {"implementation_name": "cpython", "platform_python_implementation": "CPython",
                "implementation_version": f"{self.python}.0", "python_version": self.python,
                "python_full_version": f"{self.python}.0", "os_name": "posix", "sys_platform": "linux",
                "platform_system": "Linux", "platform_machine": self.platform.machine}

    def describe(self) -> str:
        return f"{self.platform.key} (CPython {self.python}, glibc >= {self.glibc})"
