"""A small, strict SSE reader for tests: parses the bytes a real HTTP response delivers."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class SseEvent:
    id: str | None
    event: str | None
    data: str
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads(self.data)


class SseReader:
    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp
        self.comments: list[str] = []

    async def next(self, timeout: float = 5.0) -> SseEvent:
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> SseEvent:
        ev_id: str | None = None
        name: str | None = None
        data: list[str] = []
        while True:
            raw = await self.resp.content.readline()
            if not raw:
                raise EOFError("stream ended")
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if data or name or ev_id:
                    return SseEvent(ev_id, name, "\n".join(data))
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "id":
                ev_id = value
            elif key == "event":
                name = value
            elif key == "data":
                data.append(value)

    async def take(self, n: int, timeout: float = 5.0) -> list[SseEvent]:
        return [await self.next(timeout) for _ in range(n)]

    async def until(self, pred: Any, timeout: float = 5.0) -> SseEvent:
        async def scan() -> SseEvent:
            while True:
                ev = await self._next()
                if pred(ev):
                    return ev
        return await asyncio.wait_for(scan(), timeout)

    async def nothing_for(self, seconds: float) -> bool:
        """True if no event arrives within `seconds` (used after asserting all expected ones)."""
        try:
            await asyncio.wait_for(self._next(), seconds)
        except TimeoutError:
            return True
        return False
