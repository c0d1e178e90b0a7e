"""Fixtures: the real app on a real data folder under tmp_path, served over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app
from service.config import Config
from tests.sdk import open_sdk

MakeServer = Callable[..., Any]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    (d / "threads").mkdir(parents=True)
    return d


@pytest.fixture
def make_config(data_dir: Path) -> Callable[..., Config]:
    def make(**overrides: Any) -> Config:
        overrides.setdefault("data_dir", data_dir)
        return Config(**overrides)
    return make


@pytest.fixture
async def client(aiohttp_client: Any, make_config: Callable[..., Config]) -> TestClient:
    """A real aiohttp client talking HTTP to the real app over `data_dir`."""
    return await aiohttp_client(create_app(make_config()))


@pytest.fixture
def open_client(aiohttp_client: Any, make_config: Callable[..., Config]) -> Callable[..., Any]:
    """Start (another) app and a client for it, after the test has written its files: the index
    is built at start-up, so this is also a restart over the same folder."""
    async def open_(**overrides: Any) -> TestClient:
        return await aiohttp_client(create_app(make_config(**overrides)))  # type: ignore[no-any-return]
    return open_


@pytest.fixture
async def start_server(aiohttp_server: Any, make_config: Callable[..., Config]
                       ) -> Callable[..., Any]:
    """Start (another) real server over the data folder; returns the TestServer."""
    async def start(**overrides: Any) -> TestServer:
        return await aiohttp_server(create_app(make_config(**overrides)))
    return start


@pytest.fixture
async def server(start_server: Callable[..., Any]) -> TestServer:
    return await start_server()


@pytest.fixture
async def sdk(server: TestServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official openai SDK, unmodified, with strict response validation."""
    async with open_sdk(server) as c:
        yield c


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Show the counts the durability suites record (`record_property("counts", ...)`):
    acknowledged, found, lost, unreadable, in every run, not only on failure."""
    lines = {(r.nodeid, v) for cat in ("passed", "failed")
             for r in terminalreporter.getreports(cat)
             for k, v in getattr(r, "user_properties", ()) if k == "counts"}
    if lines:
        terminalreporter.write_sep("-", "durability counts")
        for nodeid, value in sorted(lines):
            terminalreporter.write_line(f"{nodeid.split('::')[-1]}: {value}")
