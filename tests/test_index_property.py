"""Property: whatever mix of API writes and other programs' appends, rewrites and truncations hits
a thread, once the watcher settles the API serves exactly what a plain re-read of the file says.

A hypothesis state machine drives one real app (real watcher, real files, real HTTP) per example.
After every step it waits, with a timeout, until `GET .../messages` equals the re-read (every
complete line that is a message, in file order, normalized), then asserts it, and that /healthz
counts the re-read's corrupt lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from service.app import create_app
from service.config import Config
from tests.watchkit import (
    create_thread,
    expected_messages,
    health,
    jan_line,
    line,
    served,
    wait_for,
    watcher_ready,
)

TEXT = st.text(alphabet="abcxyz é✓", min_size=0, max_size=12)
SETTLE_SECONDS = 5.0


def corrupt_count(path: Path) -> int:
    """Complete, non-blank lines of the file that are not messages (a plain re-read)."""
    data = path.read_bytes() if path.exists() else b""
    count = 0
    for raw in data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]:
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            count += 1
            continue
        mid = obj.get("id") if isinstance(obj, dict) else None
        if mid is None or mid == "" or isinstance(mid, dict | list):
            count += 1
    return count


def complete_lines(path: Path) -> tuple[list[bytes], bytes]:
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    return data[:end].split(b"\n")[:-1], data[end:]


class IndexFollowsFiles(RuleBasedStateMachine):
    """One thread, written by the API and by "other programs" (this test, in another thread)."""

    polling = False

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="threadline-prop-"))
        self.loop = asyncio.new_event_loop()
        self.client: TestClient | None = None
        self.serial = 0
        self.rest_of_line: bytes | None = None  # what completes a half-written line

    # --- plumbing ------------------------------------------------------------------------------

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    @property
    def http(self) -> TestClient:
        assert self.client is not None
        return self.client

    def next_id(self) -> str:
        self.serial += 1
        return f"ext_{self.serial}"

    def file_ids(self) -> list[str]:
        return [m["id"] for m in expected_messages(self.path, self.thread_id)]

    def external(self, fn: Any, *args: Any) -> None:
        """Run a write as another program would: from another thread, not the event loop."""
        self.run(asyncio.to_thread(fn, *args))

    @initialize()
    def start(self) -> None:
        data = self.tmp / "data"
        (data / "threads").mkdir(parents=True)
        config = Config(data_dir=data, watch_polling=self.polling, fsync="never")

        async def start() -> TestClient:
            client = TestClient(TestServer(create_app(config)))
            await client.start_server()
            await watcher_ready(client)
            return client
        self.client = self.run(start())
        self.thread_id = self.run(create_thread(self.http))
        self.path = data / "threads" / self.thread_id / "messages.jsonl"

    def teardown(self) -> None:
        if self.client is not None:
            self.run(self.client.close())
        self.run(self.loop.shutdown_asyncgens())
        self.run(self.loop.shutdown_default_executor())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- API writes -----------------------------------------------------------------------------

    @rule(text=TEXT)
    def api_create(self, text: str) -> None:
        resp = self.run(self.http.post(f"/v1/threads/{self.thread_id}/messages",
                                       json={"role": "user", "content": text or "-"}))
        assert resp.status == 200, self.run(resp.text())

    @precondition(lambda self: self.client is not None and bool(self.file_ids()))
    @rule(data=st.data(), text=TEXT, content=st.booleans())
    def api_modify(self, data: st.DataObject, text: str, content: bool) -> None:
        mid = data.draw(st.sampled_from(self.file_ids()))
        body: dict[str, Any] = {"content": text or "-"} if content else {"metadata": {"k": text}}
        resp = self.run(self.http.post(f"/v1/threads/{self.thread_id}/messages/{mid}", json=body))
        assert resp.status == 200, self.run(resp.text())

    @precondition(lambda self: self.client is not None and bool(self.file_ids()))
    @rule(data=st.data())
    def api_delete(self, data: st.DataObject) -> None:
        mid = data.draw(st.sampled_from(self.file_ids()))
        resp = self.run(self.http.delete(f"/v1/threads/{self.thread_id}/messages/{mid}"))
        assert resp.status == 200, self.run(resp.text())

    # --- other programs -------------------------------------------------------------------------

    def _append(self, data: bytes) -> None:
        with self.path.open("ab") as f:
            f.write(data)

    @rule(kinds=st.lists(st.sampled_from(["canonical", "jan", "corrupt", "blank"]),
                         min_size=1, max_size=4), text=TEXT)
    def external_append(self, kinds: list[str], text: str) -> None:
        out = []
        for kind in kinds:
            if kind == "canonical":
                out.append(line(self.next_id(), self.thread_id, text))
            elif kind == "jan":
                out.append(jan_line(self.next_id(), self.thread_id, text, role="assistant"))
            elif kind == "corrupt":
                out.append(b'{"id": "' + self.next_id().encode() + b'", "content": [')
            else:
                out.append(b"   ")
        self.external(self._append, b"".join(x + b"\n" for x in out))

    @precondition(lambda self: self.rest_of_line is None)
    @rule(text=TEXT, cut=st.integers(1, 40))
    def external_half_line(self, text: str, cut: int) -> None:
        whole = line(self.next_id(), self.thread_id, text) + b"\n"
        self.rest_of_line = whole[cut:]
        self.external(self._append, whole[:cut])

    @precondition(lambda self: self.rest_of_line is not None)
    @rule()
    def external_rest_of_line(self) -> None:
        assert self.rest_of_line is not None
        rest, self.rest_of_line = self.rest_of_line, None
        self.external(self._append, rest)

    def _edited(self, data: st.DataObject) -> bytes:
        """The file as another program's edit leaves it: some lines dropped, some changed, the
        torn tail (if any) kept."""
        lines, tail = complete_lines(self.path)
        out = []
        for raw in lines:
            action = data.draw(st.sampled_from(["keep", "keep", "drop", "edit"]))
            if action == "drop":
                continue
            if action == "edit":
                try:
                    obj = json.loads(raw)
                except ValueError:
                    obj = None
                if isinstance(obj, dict):
                    obj["metadata"] = {"edited": data.draw(TEXT)}
                    raw = json.dumps(obj, separators=(",", ":")).encode()
            out.append(raw + b"\n")
        return b"".join(out) + tail

    def _write_in_place(self, content: bytes) -> None:
        with self.path.open("wb") as f:
            f.write(content)

    def _replace(self, content: bytes) -> None:
        tmp = self.path.with_name(".messages.jsonl.external")
        tmp.write_bytes(content)
        os.replace(tmp, self.path)

    @rule(data=st.data())
    def external_rewrite_in_place(self, data: st.DataObject) -> None:
        self.external(self._write_in_place, self._edited(data))

    @rule(data=st.data())
    def external_rename_over(self, data: st.DataObject) -> None:
        self.external(self._replace, self._edited(data))

    @precondition(lambda self: self.client is not None and self.path.stat().st_size > 0)
    @rule(data=st.data())
    def external_truncate(self, data: st.DataObject) -> None:
        size = data.draw(st.integers(0, self.path.stat().st_size - 1))
        self.rest_of_line = None  # whatever was half-written is cut or now stands alone
        self.external(os.truncate, self.path, size)

    # --- the property ---------------------------------------------------------------------------

    @invariant()
    def index_matches_a_plain_re_read(self) -> None:
        if self.client is None:
            return
        expected = expected_messages(self.path, self.thread_id)
        corrupt = corrupt_count(self.path)

        async def check() -> bool:
            return (await served(self.http, self.thread_id) == expected
                    and (await health(self.http))["corrupt_lines"] == corrupt)
        try:
            self.run(wait_for(check, timeout=SETTLE_SECONDS, what="the index to settle"))
        except AssertionError:
            got = self.run(served(self.http, self.thread_id)) or []
            assert [m["id"] for m in got] == [m["id"] for m in expected]
            assert got == expected
            body = self.run(health(self.http))
            assert body["corrupt_lines"] == corrupt, (body["corrupt"], self.path.read_bytes())


class PolledIndexFollowsFiles(IndexFollowsFiles):
    polling = True


COMMON = settings(derandomize=True, deadline=None, print_blob=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def test_index_follows_api_and_external_writes() -> None:
    run = IndexFollowsFiles.TestCase
    run.settings = settings(COMMON, max_examples=20, stateful_step_count=12)
    run().runTest()


def test_polled_index_follows_api_and_external_writes() -> None:
    run = PolledIndexFollowsFiles.TestCase
    run.settings = settings(COMMON, max_examples=6, stateful_step_count=10)
    run().runTest()
