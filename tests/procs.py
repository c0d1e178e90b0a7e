"""Real Threadline server processes and external writers for the durability suites.

`ServerProcess` runs `python -m service` exactly as a user would, waits for `/healthz`, and can be
killed with SIGKILL. `read_lines` splits a `messages.jsonl` into whole lines and a torn tail, and
`all_messages` pages through a thread over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
APPENDER = Path(__file__).resolve().parent / "appender.py"
JSON = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    """The environment without THREADLINE_* settings, so only the flags given count."""
    return {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}


class ServerProcess:
    """`python -m service --data-dir D --port P` in a subprocess (cwd: a folder with no config)."""

    def __init__(self, data_dir: Path, workdir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.workdir = workdir
        self.extra = extra
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "server.log"
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 20.0) -> None:
        """Start and wait until /healthz answers 200 (retrying on a port taken meanwhile)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            self.port = free_port()
            self.starts += 1
            with self.log.open("ab") as log:
                log.write(f"--- start {self.starts} on port {self.port}\n".encode())
                log.flush()
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "service", "--data-dir", str(self.data_dir),
                     "--port", str(self.port), "--log-level", "warning", *self.extra],
                    cwd=self.workdir, env=clean_env(), stdout=log, stderr=subprocess.STDOUT)
            if await self._healthy(timeout):
                return
            self.kill9()
        raise RuntimeError(f"server did not start; log:\n{self.log.read_text()[-4000:]}")

    async def _healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    return False
                try:
                    async with http.get(self.url + "/healthz") as resp:
                        if resp.status == 200:
                            return True
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)  # polling a process we cannot be notified by
        return False

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Graceful stop (SIGTERM), SIGKILL if it does not go in time."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()


def read_lines(path: Path) -> tuple[list[bytes], bytes]:
    """The whole lines of a file (without newlines) and the torn tail after the last newline."""
    data = path.read_bytes() if path.exists() else b""
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1] if end else []
    return lines, data[end:]


def parse_line(line: bytes) -> dict[str, Any] | None:
    """A line as a message object with a string id, or None if it is not one."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"]:
        return None
    return obj


async def all_messages(http: aiohttp.ClientSession, base: str, thread_id: str
                       ) -> list[dict[str, Any]]:
    """Every message of a thread in file order, paging with `after` cursors."""
    out: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params = {"order": "asc", "limit": "100"}
        if after:
            params["after"] = after
        async with http.get(f"{base}/v1/threads/{thread_id}/messages", params=params) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            page = await resp.json()
        out.extend(page["data"])
        if not page["has_more"]:
            return out
        after = page["last_id"]


async def wait_for(predicate: Any, timeout: float, what: str) -> float:
    """Await `predicate()` (an async callable) until true; return seconds taken. Polls, because
    the thing awaited happens in another process."""
    started = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def canonical_line(message_id: str, thread_id: str, text: str) -> bytes:
    """A complete OpenAI v2 message line, as Threadline itself writes it."""
    return json.dumps({
        "id": message_id, "object": "thread.message", "created_at": int(time.time()),
        "thread_id": thread_id, "status": "completed", "incomplete_details": None,
        "completed_at": None, "incomplete_at": None, "role": "user",
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
        "assistant_id": None, "run_id": None, "attachments": [], "metadata": {},
    }, separators=(",", ":"), ensure_ascii=False).encode()
