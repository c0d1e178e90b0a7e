"""Image URLs as URIs: OpenAI's spec gives `image_url.url` the format `uri` (RFC 3986), and
clients that validate answers hold them to it.

A URL with a scheme becomes a URI the way browsers make one (WHATWG URL): leading and trailing
spaces and control characters dropped, tabs and newlines dropped wherever they are (a base64
data URL wrapped at 76 columns), then what a URI cannot hold (spaces,
non-ASCII characters, control characters, `<>"{}|\\^`, a `%` not starting an escape, a second
`#`) is percent-encoded (UTF-8). One without a scheme (a bare file path, a Windows path
such as `C:\\Users\\cat.png`) is no URL at all.
String work in C (a 4 MB data URL takes milliseconds), no pattern matched character by character.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from urllib.parse import quote

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
# A Windows path (`C:\Users\...`, `C:/Users/...`), not a one-letter scheme: no URL scheme has
# one letter, and browsers read these as file paths too.
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SUB_DELIMS = "!$&'()*+,;="
# Kept as they are beside letters and digits (RFC 3986), `%` included (escapes already there):
# in a path, query or fragment; in user info; in a host name. `#` only once, brackets only
# around an IP literal host: elsewhere they are encoded.
_SAFE = "-._~" + _SUB_DELIMS + ":@/?%"
_USER_SAFE = "-._~" + _SUB_DELIMS + ":%"
_HOST_SAFE = "-._~" + _SUB_DELIMS + "%"
# RFC 3986's IPvFuture (an IPv6 address is checked by `ipaddress`; no zone id: RFC 6874's
# `%25eth0` is not in the grammar validators check).
_IP_FUTURE = re.compile(r"[vV][0-9A-Fa-f]+\.[-._~!$&'()*+,;=:0-9A-Za-z]+")
_C0_AND_SPACE = "".join(map(chr, range(0x21)))


def as_uri(url: str) -> str | None:
    """`url` as a URI (itself when it is one), or None when it has no scheme or its authority
    cannot be one (an unclosed IP literal, a port that is not a number)."""
    url = url.strip(_C0_AND_SPACE)
    if "\n" in url or "\r" in url or "\t" in url:
        url = url.replace("\n", "").replace("\r", "").replace("\t", "")
    scheme = _SCHEME.match(url)
    if scheme is None or _DRIVE.match(url):
        return None
    if "%" in url:
        url = _STRAY_PERCENT.sub("%25", url)
    out, rest = url[:scheme.end()], url[scheme.end():]
    if rest.startswith("//"):
        end = len(rest)
        for stop in "/?#":
            if (at := rest.find(stop, 2)) >= 0:
                end = min(end, at)
        authority = _authority(rest[2:end])
        if authority is None:
            return None
        out, rest = out + "//" + authority, rest[end:]
    head, hash_, fragment = rest.partition("#")
    return out + quote(head, safe=_SAFE) + hash_ + quote(fragment, safe=_SAFE)


def _authority(authority: str) -> str | None:
    """`[user info@]host[:port]` as RFC 3986 has it: a non-ASCII host name in IDNA (punycode),
    as browsers send it."""
    userinfo, at, hostport = authority.rpartition("@")
    if hostport.startswith("["):
        close = hostport.find("]") + 1
        host, port = hostport[:close], hostport[close:]
        if not close or not _ip_literal(host[1:-1]):
            return None
    else:
        host, colon, digits = hostport.partition(":")
        port = colon + digits
        if not host.isascii():  # a name IDNA does not take is percent-encoded below
            with contextlib.suppress(UnicodeError):
                host = host.encode("idna").decode("ascii")
        host = quote(host, safe=_HOST_SAFE)
    if port and not port[1:].isdigit() and port != ":":
        return None
    return quote(userinfo, safe=_USER_SAFE) + at + host + port


def _ip_literal(inside: str) -> bool:
    """What RFC 3986 takes between `[` and `]`: an IPv6 address (`[0]` is none) or IPvFuture."""
    if _IP_FUTURE.fullmatch(inside):
        return True
    if "%" in inside:  # a zone id, which `ipaddress` takes and the grammar does not
        return False
    try:
        ipaddress.IPv6Address(inside)
    except ValueError:
        return False
    return True
