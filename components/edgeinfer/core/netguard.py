"""Outbound addresses: which hosts a remote setting may name, which addresses the device never reaches, and
an opener that connects to exactly the address it checked.

* ``host_allowed(host, patterns)``: an allow-list of exact names, ``*.suffix`` (any subdomain, not the bare
  suffix), IP addresses and CIDR networks.
* ``resolve_checked(host, port)``: every address the name resolves to, or ``Blocked`` when any of them is
  link-local (169.254.0.0/16, fe80::/10: the cloud metadata services live there), the EC2 IPv6 metadata
  address fd00:ec2::254, unspecified (0.0.0.0/8, ::), broadcast or multicast, IPv4-mapped IPv6 forms included.
  That refusal holds whatever an allow-list says.
* ``Outbound``: the policy one connection follows; ``netopener.build_opener`` makes urllib follow it (kept
  apart: the HTTP and TLS stack is imported only where a request is made, not on every start).

What a ``Blocked`` says names the host and the rule, never a resolved address: errors reach the cloud.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import EdgeInferError
from .redact import redact

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]  # socket.getaddrinfo's signature and answer
MAX_REDIRECTS = 5

# Never reached, whatever an allow-list says.
REFUSED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "169.254.0.0/16",   # IPv4 link-local: 169.254.169.254 is the AWS, Azure and GCP metadata service
    "fe80::/10",        # IPv6 link-local
    "fd00:ec2::254/128",  # the EC2 IPv6 metadata address
    "0.0.0.0/8",        # "this network": 0.0.0.0 reaches the device itself
    "::/128",           # IPv6 unspecified
    "255.255.255.255/32",  # limited broadcast
    "224.0.0.0/4",      # IPv4 multicast
    "ff00::/8",         # IPv6 multicast
))
REFUSED_TEXT = "a link-local or metadata address"


class Blocked(EdgeInferError):
    """An outbound address is refused: not in the allow-list, a refused scheme, or a refused address."""


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is not part of it
    except ValueError:
        return None


def address_refused(address: str | IPAddress) -> bool:
    """Whether ``address`` is one the device never connects to (link-local, metadata, unspecified,
    broadcast, multicast), its IPv4-mapped IPv6 form (``::ffff:169.254.169.254``) included."""
    ip = _ip(address) if isinstance(address, str) else address
    if ip is None:
        return True  # not an address at all: nothing to connect to
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in REFUSED_NETWORKS)


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Whether ``host`` (a name or an IP address, as a URL names it) matches one of ``patterns``.

    Patterns: an exact name (case-insensitive, a trailing dot ignored); ``*.suffix``, which matches any name
    below the suffix at any depth but not the suffix itself; an IP address; a CIDR network (v4 or v6), which
    matches IP addresses written in the URL (names are matched by name, not by what they resolve to)."""
    name = _normal_host(host)
    if not name:
        return False
    ip = _ip(name)
    for raw in patterns:
        pattern = _normal_host(raw)
        if not pattern:
            continue
        if pattern.startswith("*."):
            suffix = pattern[1:]  # ".example.com"
            if ip is None and len(name) > len(suffix) and name.endswith(suffix) and not name.startswith("."):
                return True
            continue
        try:
            network = ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            if name == pattern:
                return True
            continue
        if ip is not None and ip.version == network.version and ip in network:
            return True
    return False


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid host pattern (for config validation), or None when it is."""
    p = _normal_host(pattern)
    if not p:
        return "an empty host pattern"
    if p.startswith("*."):
        p = p[2:]
        if not p or "*" in p or _ip(p) is not None:
            return f"{pattern!r}: a wildcard is '*.' before a domain name"
    elif "*" in p:
        return f"{pattern!r}: a wildcard is only allowed as a leading '*.'"
    if "/" in p:
        try:
            ipaddress.ip_network(p, strict=False)
        except ValueError:
            return f"{pattern!r} is not a CIDR network"
        return None
    if _ip(p) is None and not all(label and len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum()
                                  for label in p.split(".")):
        return f"{pattern!r} is not a host name, an IP address or a CIDR network"
    return None


def check_patterns(patterns: list[str]) -> list[str]:
    """``patterns`` when each is a valid host pattern; else ValueError with the first problem (a config's
    ``hosts`` validator)."""
    for p in patterns:
        if problem := pattern_problem(p):
            raise ValueError(problem)
    return patterns


def resolve_checked(host: str, port: int, resolve: Resolver = socket.getaddrinfo) -> list[str]:
    """Every address ``host`` resolves to (in the resolver's order, without duplicates). Raises ``Blocked``
    when any of them is refused (see ``address_refused``), ``OSError`` when the name does not resolve."""
    name = host.strip("[]")
    literal = _ip(name)
    if literal is not None:
        addresses = [str(literal)]
    else:
        answers = resolve(name, port, 0, socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in answers))
        if not addresses:
            raise OSError(f"{name} resolves to no address")
    refused = [a for a in addresses if address_refused(a)]
    if refused:
        log.info("outbound: %s resolves to %s: refused (%s)", name, ", ".join(addresses), ", ".join(refused))
        raise Blocked(f"{name} resolves to {REFUSED_TEXT}",
                      "the device never connects to link-local, cloud metadata, unspecified or multicast addresses")
    return addresses


@dataclass(frozen=True)
class Outbound:
    """What one kind of request may reach: the schemes, the allow-list (``hosts``; None: any host, the
    addresses are still checked) and the setting that holds it (named in refusals)."""

    hosts: tuple[str, ...] | None = None
    schemes: frozenset[str] = frozenset({"https"})
    setting: str = "the allow-list"
    scheme_hint: str = "use an https:// URL"
    resolve: Resolver = socket.getaddrinfo

    def check_url(self, url: str, redirected: bool = False) -> tuple[str, int]:
        """(host, port) of ``url`` when its scheme and host may be reached; raises ``Blocked`` otherwise.
        The addresses are checked when connecting (``connect``)."""
        try:
            parts = urlsplit(url)
            scheme, host, port = parts.scheme.lower(), parts.hostname or "", parts.port
        except ValueError:
            raise Blocked("the URL is not valid", "give a valid http(s):// URL") from None
        if scheme not in self.schemes:
            log.info("outbound: %s refused: scheme %s", redact(url), scheme or "(none)")
            what = f"{scheme}:// URL" if scheme else "URL without a scheme"
            raise Blocked(f"it redirects to a {what}, which is refused" if redirected
                          else f"a {what} is refused", self.scheme_hint)
        if not host:
            raise Blocked("it redirects to a URL without a host" if redirected else "the URL has no host",
                          "give a valid http(s):// URL")
        if self.hosts is not None and not host_allowed(host, self.hosts):
            log.info("outbound: %s refused: %s is not in %s", redact(url), host, self.setting)
            raise Blocked(f"it redirects to {host}, which is not in {self.setting}" if redirected
                          else f"{host} is not in {self.setting}",
                          f"add the host to {self.setting} in the device's local settings, or use an allowed host")
        return host, port or (443 if scheme == "https" else 80)

    def connect(self, host: str, port: int, timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
                source_address: tuple[str, int] | None = None) -> socket.socket:
        """A TCP connection to one of the checked addresses of ``host`` (each tried in turn)."""
        last: OSError | None = None
        for address in resolve_checked(host, port, self.resolve):
            try:
                return socket.create_connection((address, port), timeout, source_address)
            except OSError as exc:
                last = exc
        assert last is not None
        raise last
