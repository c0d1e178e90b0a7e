"""Image URLs become URIs the way browsers make them (service/uris.py), and what comes out is an
RFC 3986 URI by the grammar OpenAPI validators check `format: uri` with (rfc3987)."""

from __future__ import annotations

import pytest
import rfc3987
from hypothesis import given, settings
from hypothesis import strategies as st

from service.uris import as_uri


@pytest.mark.parametrize(("url", "uri"), [
    ("https://example.com/a.png?q=1#f", "https://example.com/a.png?q=1#f"),
    ("data:image/png;base64,AA+/=", "data:image/png;base64,AA+/="),
    ("https://x.test/ä b.png\n", "https://x.test/%C3%A4%20b.png"),
    ("https://example.com/a?x[]=1", "https://example.com/a?x%5B%5D=1"),
    ("https://example.com/a#frag[1]#2", "https://example.com/a#frag%5B1%5D%232"),
    ("http://user@[::1]:8080/a.png", "http://user@[::1]:8080/a.png"),
    ("http://[::ffff:192.0.2.1]/a.png", "http://[::ffff:192.0.2.1]/a.png"),
    ("http://[v7.a:b]/a.png", "http://[v7.a:b]/a.png"),
    ("https://bücher.de/x.png", "https://xn--bcher-kva.de/x.png"),
    ("https://x.test/%zz|", "https://x.test/%25zz%7C"),
    ("data:image/svg+xml;utf8,<svg/>", "data:image/svg+xml;utf8,%3Csvg/%3E"),
    ("data:image/png;base64,AA\r\nBB", "data:image/png;base64,AABB"),
])
def test_urls_become_the_uris_browsers_make(url: str, uri: str) -> None:
    assert as_uri(url) == uri
    assert rfc3987.match(uri, rule="URI")
    assert as_uri(uri) == uri  # a URI stays as it is


@pytest.mark.parametrize("url", ["", "  ", "cat.png", "/abs/cat.png", "//host/x",
                                 "http://[::1/x", "https://example.com:80:90/",
                                 "https://h:port/x", "http://[fe80::1%25eth0]/",
                                 "https://[0]", "http://[1:2]/x", "http://[::1.2.3.04]/",
                                 "C:\\Users\\me\\cat.png", "c:/Users/me/cat.png"])
def test_what_cannot_be_a_uri_is_refused(url: str) -> None:
    assert as_uri(url) is None


URL_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(scheme=st.sampled_from(["https:", "http:", "data:", "ftp:", "x-y+z.1:"]),
       slashes=st.sampled_from(["", "//"]),
       rest=st.text(URL_CHARS, max_size=60))
def test_whatever_comes_out_is_an_rfc_3986_uri(scheme: str, slashes: str, rest: str) -> None:
    uri = as_uri(scheme + slashes + rest)
    if uri is not None:
        assert rfc3987.match(uri, rule="URI"), uri
        assert as_uri(uri) == uri
