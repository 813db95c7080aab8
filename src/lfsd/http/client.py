"""The client's address: the peer's, or, behind a trusted reverse proxy, the one the proxy saw.

X-Forwarded-For is believed only from the proxies listed in ``trusted_proxies`` (none by default): anyone else can
write any address there, and would dodge the per-address login throttle by doing so. The header is read from the
right: each trusted proxy appends the address it received from, so the first untrusted hop is the client.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiohttp import web

from lfsd.http.keys import SETTINGS

Networks = Sequence[IPv4Network | IPv6Network]

UNKNOWN = "unknown"


def _trusted(address: str, networks: Networks) -> bool:
    try:
        ip = ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _canonical(address: str) -> str | None:
    try:
        return str(ip_address(address.strip()))
    except ValueError:
        return None


def client_address(request: web.Request) -> str:
    peer = request.remote or UNKNOWN
    networks = request.config_dict[SETTINGS].trusted_proxies
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [hop for header in request.headers.getall("X-Forwarded-For", []) for hop in header.split(",")]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            # A proxy that forwards garbage must not make every client look like one address, nor a new one.
            return _canonical(hop) or peer
    return (_canonical(hops[0]) if hops else None) or peer
