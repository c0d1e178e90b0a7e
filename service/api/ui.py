"""The viewer: `GET /` serves the page, `GET /ui/{name}` its assets, from the package's `ui/`.

Assets are an allow-list built once from the directory listing, so a request can only ever name a
file that ships in the package (no path is built from the URL). The page carries a strict CSP:
message text is untrusted, and with no inline script allowed an injection that slipped past the
page's textContent-only rendering still could not run.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import hdrs, web

from ..errors import Handler, NotFound

UI_DIR = Path(__file__).resolve().parent.parent / "ui"

# img-src is open because the user may click "load image" on an image_url part; nothing else
# (scripts, styles, fetches) may leave the server. `frame-ancestors` keeps other sites from
# framing the page (clickjacking the composer).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data: http: https:; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a clicked image must not learn the viewer's URL
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidate (ETag) so an upgrade shows at once
}
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


def asset_table(ui_dir: Path = UI_DIR) -> dict[str, Path]:
    """Every regular file directly in `ui_dir`, by name (read once at start-up)."""
    if not ui_dir.is_dir():
        return {}
    return {p.name: p for p in ui_dir.iterdir() if p.is_file() and not p.name.startswith(".")}


def ui_routes(ui_dir: Path = UI_DIR) -> list[tuple[str, str, Handler]]:
    """(method, path, handler) of the page and its assets."""
    assets = asset_table(ui_dir)

    async def page(request: web.Request) -> web.StreamResponse:
        if "index.html" not in assets:
            raise NotFound("The viewer is not installed (service/ui/index.html is missing).")
        return web.FileResponse(assets["index.html"], headers=PAGE_HEADERS)

    async def asset(request: web.Request) -> web.StreamResponse:
        path = assets.get(request.match_info["name"])
        if path is None:
            raise NotFound(f"No viewer file named '{request.match_info['name']}'.")
        return web.FileResponse(path, headers=ASSET_HEADERS)

    return [(hdrs.METH_GET, "/", page), (hdrs.METH_GET, "/ui/{name}", asset)]
