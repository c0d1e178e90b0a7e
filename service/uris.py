"""Image URLs as URIs: OpenAI's spec gives `image_url.url` the format `uri` (RFC 3986), and
clients that validate answers hold them to it.

A URL with a scheme becomes a URI the way browsers make one (WHATWG URL): leading and trailing
spaces and control characters dropped, tabs and newlines dropped wherever they are (a base64
data URL wrapped at 76 columns), then what a URI cannot hold (spaces,
non-ASCII characters, control characters, `<>"{}|\\^`, a `%` not starting an escape, a second
`#`) is percent-encoded (UTF-8). One without a scheme (a bare file path) is no URL at all.
String work in C (a 4 MB data URL takes milliseconds), no pattern matched character by character.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Kept as they are beside letters and digits: RFC 3986's reserved and unreserved characters
# (brackets anywhere: an IP literal needs them, and query strings such as `a[]=1` are common),
# and `%` (escapes already there). `#` only once: a second one is encoded.
_SAFE = "-._~!$&'()*+,;=:@/?[]%"


_C0_AND_SPACE = "".join(map(chr, range(0x21)))


def as_uri(url: str) -> str | None:
    """`url` as a URI (itself when it is one), or None when it has no scheme."""
    url = url.strip(_C0_AND_SPACE)
    if "\n" in url or "\r" in url or "\t" in url:
        url = url.replace("\n", "").replace("\r", "").replace("\t", "")
    if not _SCHEME.match(url):
        return None
    if "%" in url:
        url = _STRAY_PERCENT.sub("%25", url)
    head, hash_, fragment = url.partition("#")
    return quote(head, safe=_SAFE) + hash_ + quote(fragment, safe=_SAFE)
