"""`create_app(config)`: state, background work and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from .api.cors import setup_cors
from .api.metrics import setup_metrics
from .api.routes import setup_routes
from .api.unparsed import install as answer_unparsed_in_envelope
from .config import Config
from .events.hub import Hub
from .events.journal import Journal
from .feed import Feed
from .index.catalog import Catalog
from .index.peers import Peers, Stamps
from .index.prover import prove
from .index.sync import Indexer
from .keys import CATALOG, CONFIG, FEED, HUB, INDEXER, REPO, WATCH
from .repo import Repository
from .watch import WatchStats, watching

log = logging.getLogger(__name__)


MAX_REQUEST_LINE = 64 << 10
MAX_HEADER = 64 << 10  # aiohttp's default, 8 KiB, refuses big cookies in plain text


async def index_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the index before the server accepts traffic, then decide which lines are canonical
    in the background (index/prover.py); close read descriptors at the end."""
    await app[INDEXER].build()
    proving = asyncio.create_task(prove(app[CATALOG], app[INDEXER].tables_built(),
                                        app[REPO].reader.call)) \
        if app[CONFIG].prove_lines else None
    yield
    if proving is not None:
        proving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await proving
    app[INDEXER].stop()
    app[REPO].reader.close()
    app[CATALOG].close()


async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
    """Journal what changed while no server ran, then stream changes to subscribers."""
    await app[HUB].start()
    yield
    await app[HUB].stop()


async def close_streams(app: web.Application) -> None:
    """End open event streams at shutdown, so it does not wait out the shutdown timeout: idle
    ones end their response; one whose handler is stuck writing to a client that reads nothing
    has its connection cut (its client resumes with Last-Event-ID)."""
    for sub in list(app[HUB].subscribers):
        sub.close()
        if sub.busy and sub.on_drop is not None:
            sub.on_drop()


async def watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """Follow other programs' changes to the data folder while the app runs."""
    async with watching(app[CONFIG], app[INDEXER], app[WATCH]):
        yield


def create_app(config: Config, stamps: Stamps | None = None) -> web.Application:
    """The app over `config.data_dir`; `stamps`: the table shared with the other workers of
    the same server, when there are others (index/peers.py)."""
    answer_unparsed_in_envelope()
    # No middlewares: each route's handler is wrapped by the gate (api/gate.py) instead.
    # A request line of up to 64 KiB: message ids on disk have no length limit (Jan's shapes),
    # and a list names one as its cursor; aiohttp's default (8 KiB) refused the longer ones.
    app = web.Application(client_max_size=config.max_body_bytes,
                          handler_args={"max_line_size": MAX_REQUEST_LINE,
                                        "max_field_size": MAX_HEADER})
    catalog = Catalog(config.line_cache_mb << 20)
    feed = Feed()
    indexer = Indexer(config.threads_dir, catalog, feed)
    app[CONFIG] = config
    app[CATALOG] = catalog
    app[FEED] = feed
    app[INDEXER] = indexer
    # Made before the index is built: writes other workers make from then on are caught up.
    peers = Peers(stamps, indexer) if stamps is not None else None
    app[REPO] = Repository(config, catalog, indexer, peers)
    app[WATCH] = WatchStats()
    app[HUB] = Hub(catalog, feed, Journal(config.data_dir), app[REPO].reader.call,
                   config.sse_queue_limit, config.sse_queue_mb << 20, indexer.sync)
    setup_metrics(app)
    if config.cors_origins:
        setup_cors(app)
    app.cleanup_ctx.append(index_ctx)
    app.cleanup_ctx.append(hub_ctx)
    app.cleanup_ctx.append(watch_ctx)
    app.on_shutdown.append(close_streams)
    setup_routes(app)
    return app
