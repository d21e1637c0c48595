"""Semantic versions and the npm-style ranges Greengrass uses in ``VersionRequirement``.

Greengrass resolves component dependencies with npm semantics: ``>=1.0.0 <2.0.0``, ``^1.2.0``,
``~1.2.0``, ``1.x``, ``*``, bare ``1.2.3`` and ``||`` alternatives. This module parses exactly that
subset, so a recipe with a range Greengrass would reject fails here first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from ...core.modelpkg.manifest import SEMVER

_COMPARATOR = re.compile(r"^(>=|<=|>|<|=|\^|~)?\s*v?((?:0|[1-9]\d*|[xX*])(?:\.(?:0|[1-9]\d*|[xX*])){0,2}"
                         r"(?:-[0-9A-Za-z.-]+)?)$")


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        if not SEMVER.match(text):
            raise ValueError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH)")
        core = text.split("+", 1)[0]
        main, _, pre = core.partition("-")
        a, b, c = (int(p) for p in main.split("."))
        return cls(a, b, c, tuple(pre.split(".")) if pre else ())

    def _key(self) -> tuple:
        # a pre-release sorts before its release; numeric identifiers before alphanumeric ones
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{'.'.join(self.pre)}" if self.pre else "")


def is_semver(text: str) -> bool:
    return bool(SEMVER.match(text))


@dataclass(frozen=True, slots=True)
class _Bound:
    op: str  # one of >=, >, <, <=, =
    version: Version

    def admits(self, v: Version) -> bool:
        return {">=": v >= self.version, ">": v > self.version, "<": v < self.version,
                "<=": v <= self.version, "=": v == self.version}[self.op]


def _expand(op: str, text: str) -> list[_Bound]:
    """One comparator (with x-ranges, ^ and ~) as plain bounds."""
    parts = text.split("-", 1)[0].split(".")
    wild = next((i for i, p in enumerate(parts) if p in ("x", "X", "*")), len(parts))
    nums = [int(p) for p in parts[:wild]]
    if wild < 3 or len(parts) < 3:  # partial version: 1, 1.2, 1.x, *
        if not nums:
            return [] if op in ("", "=", ">=", "<=", "^", "~") else [_Bound("<", Version(0, 0, 0))]
        full = nums + [0] * (3 - len(nums))
        lo = Version(full[0], full[1], full[2])
        hi = Version(nums[0] + 1, 0, 0) if len(nums) == 1 else Version(nums[0], nums[1] + 1, 0)
        return {"": [_Bound(">=", lo), _Bound("<", hi)], "=": [_Bound(">=", lo), _Bound("<", hi)],
                "^": [_Bound(">=", lo), _Bound("<", hi)], "~": [_Bound(">=", lo), _Bound("<", hi)],
                ">=": [_Bound(">=", lo)], ">": [_Bound(">=", hi)], "<": [_Bound("<", lo)],
                "<=": [_Bound("<", hi)]}[op]
    v = Version.parse(text)
    if op == "^":
        hi = (Version(v.major + 1, 0, 0) if v.major else Version(0, v.minor + 1, 0) if v.minor
              else Version(0, 0, v.patch + 1))
        return [_Bound(">=", v), _Bound("<", hi)]
    if op == "~":
        return [_Bound(">=", v), _Bound("<", Version(v.major, v.minor + 1, 0))]
    return [_Bound(op or "=", v)]


@dataclass(frozen=True, slots=True)
class VersionRange:
    """An npm-style range: alternatives (``||``) of space-separated comparators, all of which must hold."""

    text: str
    alternatives: tuple[tuple[_Bound, ...], ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        if not text.strip():
            raise ValueError("empty version range")
        alts: list[tuple[_Bound, ...]] = []
        for alt in text.split("||"):
            tokens = re.sub(r"(>=|<=|>|<|=|\^|~)\s+", r"\1", alt.strip()).split()
            if not tokens:
                raise ValueError(f"{text!r} has an empty alternative around '||'")
            bounds: list[_Bound] = []
            for tok in tokens:
                m = _COMPARATOR.match(tok)
                if not m:
                    raise ValueError(f"{tok!r} in {text!r} is not a version comparator (e.g. >=1.0.0, ^1.2.0, 1.x)")
                bounds.extend(_expand(m.group(1) or "", m.group(2)))
            alts.append(tuple(bounds))
        return cls(text, tuple(alts))

    def admits(self, version: Version | str) -> bool:
        v = Version.parse(version) if isinstance(version, str) else version
        return any(all(b.admits(v) for b in alt) for alt in self.alternatives)


def major_range(version: str) -> str:
    """``>=M.0.0 <M+1.0.0``: any version with the same major number (what a model dependency accepts)."""
    v = Version.parse(version)
    return f">={v.major}.0.0 <{v.major + 1}.0.0"
