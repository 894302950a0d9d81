"""Which addresses WebFetch may connect to: public ones, plus hosts the configuration names.

A model that can fetch URLs can be talked (by a web page, by a README) into fetching
http://169.254.169.254/ or an admin panel on localhost. So we resolve the host ourselves, refuse it if
*any* resolved address is not public, and connect to the address we checked (not a second lookup that
DNS rebinding could change). WebFetch calls this again for every redirect hop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import ToolError
from orchestrator.tools.base import Resolver

__all__ = ["CLOUD_METADATA_ADDRESSES", "PinnedHost", "address_problem", "pin_host", "system_resolver"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CLOUD_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
"""Instance-metadata endpoints (AWS, ECS, AWS IPv6, Alibaba): credentials live there."""
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class PinnedHost:
    """The host as the URL names it, and the checked address to actually connect to."""

    host: str
    address: str


async def system_resolver(host: str) -> Sequence[str]:
    """Every address the system resolver gives for `host` (IPv4 and IPv6)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv4-mapped, 6to4 or NAT64 IPv6 address."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None or ip.sixtofour is not None:
        return ip.ipv4_mapped or ip.sixtofour
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None


def address_problem(ip: IPAddress) -> str | None:
    """Why WebFetch must not connect to `ip` ("a loopback address", ...), or None if it is public."""
    inner = _embedded_ipv4(ip)
    if inner is not None:
        return address_problem(inner)
    checks = (
        (ip in CLOUD_METADATA_ADDRESSES, "a cloud metadata address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "an address that is not publicly routable"),
    )
    return next((reason for failed, reason in checks if failed), None)


async def _addresses(host: str, resolver: Resolver) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = await resolver(host)
    except OSError as exc:
        raise ToolError(f"Could not resolve host {host!r}: {exc}") from exc
    if not found:
        raise ToolError(f"Could not resolve host {host!r}: no addresses.")
    return [ipaddress.ip_address(a) for a in found]


async def pin_host(host: str, resolver: Resolver, allowed: frozenset[str]) -> PinnedHost:
    """Resolve `host` and refuse it unless every address is public or the host is explicitly allowed."""
    addresses = await _addresses(host, resolver)
    if host.lower() not in {name.lower() for name in allowed}:
        for ip in addresses:
            problem = address_problem(ip)
            if problem is not None:
                raise ToolError(
                    f"Refusing to fetch from {host}: it resolves to {ip}, {problem}. WebFetch only "
                    "reaches public hosts (a user can allow a host in the configuration)."
                )
    return PinnedHost(host=host, address=str(addresses[0]))
