"""Every `web.AppKey` the application stores its state under."""

from __future__ import annotations

from aiohttp import web

from .config import Config
from .events.hub import Hub
from .feed import Feed
from .index.catalog import Catalog
from .index.sync import Indexer
from .metrics import Metrics
from .repo import Repository
from .watch import WatchStats

CONFIG = web.AppKey("config", Config)
CATALOG = web.AppKey("catalog", Catalog)
FEED = web.AppKey("feed", Feed)
INDEXER = web.AppKey("indexer", Indexer)
REPO = web.AppKey("repo", Repository)
WATCH = web.AppKey("watch", WatchStats)
HUB = web.AppKey("hub", Hub)
METRICS = web.AppKey("metrics", Metrics)
