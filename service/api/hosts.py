"""DNS-rebinding guard for the keyless default: only loopback names in the Host header.

With no API key (the loopback default), any web page the user opens can try to reach the API. The
same-origin policy keeps other sites out, unless a page rebinds its own domain name to 127.0.0.1:
then the browser treats the API as that site's and lets it read everything. The Host header still
carries the page's domain, so a keyless server answers only requests addressed to a loopback name
(or the configured host). A loopback address is one in any spelling (all of 127.0.0.0/8, IPv4 in
IPv6, `0.0.0.0`, which reaches this machine too, a name's trailing dot): no page can rebind an
address, only a name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from aiohttp import web

from ..config import Config
from ..errors import Forbidden

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _hostname(host_header: str) -> str:
    if host_header.startswith("["):  # [::1]:1337
        return host_header[1:].partition("]")[0]
    name, _, _port = host_header.rpartition(":") if host_header.count(":") == 1 else (
        host_header, "", "")
    return (name or host_header).lower()


def _loopback_address(name: str) -> bool:
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def host_guard(config: Config) -> Callable[[web.Request], None]:
    """The check for each request; verdicts are remembered per Host value (clients send the same
    one on every request)."""
    configured = config.host.lower()
    verdicts: dict[str, bool] = {}

    def allowed(host: str) -> bool:
        name = _hostname(host)
        if name == configured:
            return True
        name = name.removesuffix(".")  # `localhost.`: the same name, fully qualified
        return name in LOOPBACK_NAMES or name.endswith(".localhost") or _loopback_address(name)

    def check(request: web.Request) -> None:
        host = request.headers.get("Host")
        if host is None:
            return
        ok = verdicts.get(host)
        if ok is None:
            if len(verdicts) >= 256:  # any client can send any value: bound what is kept
                verdicts.clear()
            ok = verdicts[host] = allowed(host)
        if not ok:
            raise Forbidden(f"Host {host!a} is not served without an API key: use "
                            "localhost or 127.0.0.1, or configure api_keys.")
    return check
