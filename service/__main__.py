"""Command line: `threadline [serve] --data-dir D ...` (serve is the default subcommand)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.web_runner import GracefulExit

from . import __version__, check, datadir, logs, workers
from .config import Config, ConfigError, load

if TYPE_CHECKING:
    from .index.peers import Stamps


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the API (the default)")
    p.add_argument("--data-dir", type=Path, help="Jan data folder (default ./data)")
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 1337)")
    p.add_argument("--config", type=Path, help="TOML config file (default config/threadline.toml)")
    p.add_argument("--api-key", dest="api_keys", action="append",
                   help="accept this API key (repeatable)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", choices=["plain", "json"])
    p.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=None,
                   help="log one line per request (or not: --no-access-log)")
    p.add_argument("--workers", type=int,
                   help="server processes sharing the port and the folder (default 1)")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="threadline", description=__doc__)
    parser.add_argument("--version", action="version", version=f"threadline {__version__}")
    sub = parser.add_subparsers(dest="command")
    _serve_parser(sub)
    check.add_parser(sub)
    argv = list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "serve")
    return parser.parse_args(argv)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (it is a dependency): about 1.4x the requests per second of
    the stock loop for the same handlers (see bench/)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(args: argparse.Namespace) -> int:
    flags = {k: getattr(args, k)
             for k in ("data_dir", "host", "port", "api_keys", "log_level", "log_format",
                       "access_log", "workers")}
    try:
        config = load(flags, config_file=args.config)
    except ConfigError as exc:
        print(f"threadline: {exc}", file=sys.stderr)
        return 2
    logs.setup(config)
    new = not config.data_dir.exists()
    if (why := datadir.unusable(config.data_dir)) is not None:
        print(f"threadline: {why}", file=sys.stderr)
        return 2
    if new:  # a mistyped path would otherwise look like a healthy, empty server
        logging.getLogger("threadline").warning(
            "data folder %s did not exist: created it, with no threads", config.data_dir.resolve())
    if config.workers > 1:
        from .index.peers import Stamps

        stamps = Stamps()  # before the fork: shared by every worker
        return workers.run(config.workers,
                           lambda: serve_one(config, reuse_port=True, stamps=stamps))
    return serve_one(config)


def serve_one(config: Config, reuse_port: bool = False, stamps: Stamps | None = None) -> int:
    from .app import create_app

    loop = new_event_loop()
    stop_once(loop)
    try:
        web.run_app(create_app(config, stamps), host=config.host, port=config.port,
                    reuse_port=reuse_port, handle_signals=False,
                    print=lambda msg: logging.getLogger("threadline").info(
                        "serving %s on http://%s:%d", config.data_dir, config.host, config.port),
                    shutdown_timeout=2.0, access_log_class=logs.AccessLogger,
                    access_log=logging.getLogger("aiohttp.access") if config.access_log else None,
                    loop=loop)
    except OSError as exc:
        # The listening socket's (no file named): a file's error at start-up keeps its own.
        if exc.filename is not None or not (isinstance(exc, socket.gaierror)
                                            or exc.errno in _CANNOT_BIND):
            raise
        # One line, as for a bad setting: port 1337 is also the Jan app's own local API.
        hint = " (another server on that port? set --port)" if exc.errno == errno.EADDRINUSE else ""
        print(f"threadline: cannot listen on {config.host}:{config.port}: "
              f"{exc.strerror or exc}{hint}", file=sys.stderr)
        return 1
    logging.getLogger("threadline").info("stopped")
    return 0


def stop_once(loop: asyncio.AbstractEventLoop) -> None:
    """SIGINT and SIGTERM stop the server, as with aiohttp's own handlers, but only the first:
    a repeat (a worker gets a terminal's Ctrl-C and its parent's forward of it, systemd signals
    the whole group) raised again in the middle of the shutdown, which then ended with an error
    and exit code 1 instead of closing the index, the journal and the streams."""
    stopping = False

    def stop() -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise GracefulExit()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)


_CANNOT_BIND = {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.command in (None, "serve"):
        if args.command is None:
            args = parse_args(["serve"])
        return serve(args)
    if args.command == "check":
        return check.main(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
