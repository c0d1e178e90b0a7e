"""`create_app(config)`: state, middlewares, background work and routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from .api.auth import auth_middleware
from .api.routes import setup_routes
from .config import Config
from .errors import error_middleware
from .feed import Feed
from .index.catalog import Catalog
from .index.sync import Indexer
from .keys import CATALOG, CONFIG, FEED, INDEXER, REPO
from .repo import Repository

log = logging.getLogger(__name__)


async def index_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the index before the server accepts traffic; close read descriptors at the end."""
    await app[INDEXER].build()
    yield
    app[CATALOG].close()


def create_app(config: Config) -> web.Application:
    app = web.Application(
        client_max_size=config.max_body_bytes,
        middlewares=[error_middleware, auth_middleware],
    )
    catalog = Catalog()
    feed = Feed()
    indexer = Indexer(config.threads_dir, catalog, feed)
    app[CONFIG] = config
    app[CATALOG] = catalog
    app[FEED] = feed
    app[INDEXER] = indexer
    app[REPO] = Repository(config, catalog, indexer)
    app.cleanup_ctx.append(index_ctx)
    setup_routes(app)
    return app
