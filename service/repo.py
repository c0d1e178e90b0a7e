"""The operations the API offers, over the store (files) and the index (memory).

Writes go to the files first (under the thread lock, fsynced per policy) and reach the index through
the same sync path the watcher uses, so each change is indexed and published once. Reads come from
the index and one read of the file. Knows nothing of HTTP: it takes decoded requests and raises the
typed errors of `errors`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import msgspec

from .config import Config
from .errors import (
    InvalidRequest,
    PayloadTooLarge,
    UnknownMessage,
    message_not_found,
    thread_not_found,
)
from .ids import is_thread_id, new_message_id, new_thread_id
from .index.catalog import Catalog, FileState, ThreadEntry
from .index.paging import Order, page
from .index.reader import Stale, message_bytes, page_bytes, stored_line
from .index.sync import Indexer
from .models import (
    CreateMessage,
    CreateThread,
    DeletedMessage,
    DeletedThread,
    Message,
    MessageFile,
    ModifyMessage,
    ModifyThread,
    encoder,
    output_content,
)
from .store import normalize
from .store.files import fsync_dir, thread_locked, write_atomic
from .store.layout import MESSAGES, THREAD_JSON
from .store.lines import decode_object, line_id
from .store.rewrite import rewrite_message
from .store.writer import ThreadWriter


def list_envelope(items: list[bytes], first: str | None, last: str | None, more: bool) -> bytes:
    """A list response assembled from already-encoded objects (no decode/encode of the items)."""
    tail = encoder.encode({"first_id": first, "last_id": last, "has_more": more})
    return b'{"object":"list","data":[' + b",".join(items) + b"]," + tail[1:]


def _thread_json_bytes(obj: dict[str, Any]) -> bytes:
    # Jan writes thread.json pretty-printed; so do we, keeping its unknown fields.
    return json.dumps(obj, indent=2, ensure_ascii=False).encode() + b"\n"


class Repository:
    def __init__(self, config: Config, catalog: Catalog, indexer: Indexer) -> None:
        self.config = config
        self.threads_dir = config.threads_dir
        self.catalog = catalog
        self.indexer = indexer
        self.durable = config.fsync == "always"
        self._writers: dict[str, ThreadWriter] = {}
        self.on_append: Callable[[float], None] | None = None  # seconds per write+fsync (metrics)

    def writer(self, thread_id: str) -> ThreadWriter:
        w = self._writers.get(thread_id)
        if w is None:
            w = self._writers[thread_id] = ThreadWriter(
                self.threads_dir / thread_id, self.durable, self.config.write_queue_limit,
                self.on_append)
        return w

    async def thread(self, thread_id: str) -> ThreadEntry:
        """The thread's entry. A miss whose folder exists (another process created it a moment
        ago, before the watcher reported it) is synced first, so a client can use a thread
        right after creating it through any process."""
        if not is_thread_id(thread_id):
            raise thread_not_found(thread_id)
        entry = self.catalog.get(thread_id)
        if entry is None and os.path.isdir(self.threads_dir / thread_id):
            entry = await self.indexer.sync(thread_id)
        if entry is None:
            raise thread_not_found(thread_id)
        return entry

    # --- threads --------------------------------------------------------------------------------

    def list_threads(self, limit: int, order: Order, after: str | None, before: str | None
                     ) -> bytes:
        ordered = self.catalog.ordered()
        positions = {e.id: i for i, e in enumerate(ordered)} if (after or before) else {}
        cursors = [positions.get(c) if c else None for c in (after, before)]
        for name, value, pos in (("after", after, cursors[0]), ("before", before, cursors[1])):
            if value and pos is None:
                raise InvalidRequest(f"Invalid '{name}': no thread found with id '{value}'.",
                                     param=name)
        slots, more = page(range(len(ordered)), limit, order, cursors[0], cursors[1])
        items = [ordered[i] for i in slots]
        return list_envelope([e.thread_bytes for e in items], items[0].id if items else None,
                             items[-1].id if items else None, more)

    async def create_thread(self, req: CreateThread) -> ThreadEntry:
        thread_id = new_thread_id()
        now = int(time.time())
        doc: dict[str, Any] = {"id": thread_id, "object": "thread", "created_at": now,
                               "metadata": req.metadata or {},
                               "tool_resources": msgspec.to_builtins(req.tool_resources)}
        lines = [self._new_line(thread_id, m, now) for m in req.messages]
        await asyncio.get_running_loop().run_in_executor(None, self._create_folder, thread_id,
                                                         doc, lines)
        entry = await self.indexer.sync(thread_id)
        assert entry is not None
        return entry

    def _create_folder(self, thread_id: str, doc: dict[str, Any], lines: list[bytes]) -> None:
        """Build the folder under a hidden name, then rename it into place: other readers (the
        watcher, Jan) never see a thread without its thread.json."""
        self.threads_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.threads_dir / f".new-{thread_id}"
        tmp.mkdir()
        write_atomic(tmp / MESSAGES, b"".join(line + b"\n" for line in lines), self.durable)
        write_atomic(tmp / THREAD_JSON, _thread_json_bytes(doc), self.durable)
        os.rename(tmp, self.threads_dir / thread_id)
        if self.durable:
            fsync_dir(self.threads_dir)

    async def modify_thread(self, thread_id: str, req: ModifyThread) -> ThreadEntry:
        entry = await self.thread(thread_id)

        def edit() -> None:
            path = entry.folder / THREAD_JSON
            with thread_locked(entry.folder):
                try:
                    found = decode_object(path.read_bytes())
                except FileNotFoundError:
                    found = None
                # None: no thread.json, or one that is not an object; a complete one replaces it.
                doc = found if found is not None else {
                    "id": thread_id, "object": "thread", "created_at": entry.thread.created_at}
                if req.metadata is not msgspec.UNSET:
                    doc["metadata"] = req.metadata or {}
                if req.tool_resources is not msgspec.UNSET:
                    doc["tool_resources"] = msgspec.to_builtins(req.tool_resources)
                write_atomic(path, _thread_json_bytes(doc), self.durable)

        await self._exclusive(thread_id, edit)
        synced = await self.indexer.sync(thread_id)
        if synced is None:
            raise thread_not_found(thread_id)
        return synced

    async def delete_thread(self, thread_id: str) -> bytes:
        entry = await self.thread(thread_id)
        hidden = self.threads_dir / f".deleted-{thread_id}-{os.urandom(4).hex()}"

        def remove() -> None:
            with thread_locked(entry.folder):
                os.rename(entry.folder, hidden)
                if self.durable:
                    fsync_dir(self.threads_dir)
            shutil.rmtree(hidden, ignore_errors=True)

        async with self.indexer.lock(thread_id):
            try:
                await self.writer(thread_id).exclusive(remove)
            except FileNotFoundError:
                raise thread_not_found(thread_id) from None
            self.indexer.apply_gone(thread_id)
        self._writers.pop(thread_id, None)
        return encoder.encode(DeletedThread(id=thread_id))

    async def _exclusive(self, thread_id: str, fn: Any) -> Any:
        try:
            return await self.writer(thread_id).exclusive(fn)
        except (FileNotFoundError, NotADirectoryError):
            raise thread_not_found(thread_id) from None

    # --- messages -------------------------------------------------------------------------------

    def _new_line(self, thread_id: str, req: CreateMessage, now: int) -> bytes:
        msg = Message(id=new_message_id(), created_at=now, thread_id=thread_id,
                      role=req.role, content=output_content(req.content),
                      attachments=req.attachments or [], metadata=req.metadata or {})
        line = encoder.encode(msg)
        if len(line) > self.config.max_line_bytes:
            raise PayloadTooLarge(
                f"Message is too large: {len(line)} bytes encoded, the limit is "
                f"{self.config.max_line_bytes}.", param="content")
        return line

    async def create_message(self, thread_id: str, req: CreateMessage) -> bytes:
        entry = await self.thread(thread_id)
        line = self._new_line(thread_id, req, int(time.time()))
        offset = await self._exclusive_append(thread_id, line)
        if entry.tail.end < offset + len(line) + 1 or self.catalog.get(thread_id) is not entry:
            await self.indexer.sync(thread_id)
        return line

    async def _exclusive_append(self, thread_id: str, line: bytes) -> int:
        try:
            return await self.writer(thread_id).append(line)
        except (FileNotFoundError, NotADirectoryError):
            raise thread_not_found(thread_id) from None

    async def _read(self, thread_id: str, fn: Any, *args: Any) -> Any:
        """Run a read; if the file changed under the index, or the message is not (yet) in it,
        sync once and run it again."""
        entry = await self.thread(thread_id)
        try:
            return fn(entry, *args)
        except (Stale, FileNotFoundError, UnknownMessage):
            pass
        synced = await self.indexer.sync(thread_id)
        if synced is None:
            raise thread_not_found(thread_id)
        return fn(synced, *args)

    def _slot(self, entry: ThreadEntry, message_id: str) -> int:
        slot = entry.messages.find(message_id)
        if slot < 0:
            raise message_not_found(message_id)
        return slot

    async def get_message(self, thread_id: str, message_id: str) -> bytes:
        def read(entry: ThreadEntry) -> bytes:
            return message_bytes(self.catalog, entry, self._slot(entry, message_id))
        result: bytes = await self._read(thread_id, read)
        return result

    async def list_messages(self, thread_id: str, limit: int, order: Order, after: str | None,
                            before: str | None, run_id: str | None) -> bytes:
        def read(entry: ThreadEntry) -> bytes:
            index = entry.messages
            cursors: list[int | None] = []
            for name, value in (("after", after), ("before", before)):
                slot = index.find(value) if value else None
                if value and (slot is None or slot < 0):
                    raise InvalidRequest(
                        f"Invalid '{name}': no message found with id '{value}'.", param=name)
                cursors.append(slot)
            seq = range(len(index)) if run_id is None else index.slots_with_run(run_id)
            slots, more = page(seq, limit, order, cursors[0], cursors[1])
            items = page_bytes(self.catalog, entry, slots)
            first = index.id_at(slots[0]) if slots else None
            last = index.id_at(slots[-1]) if slots else None
            return list_envelope(items, first, last, more)
        result: bytes = await self._read(thread_id, read)
        return result


    async def modify_message(self, thread_id: str, message_id: str, req: ModifyMessage) -> bytes:
        changes: dict[str, Any] = {k: msgspec.to_builtins(v) for k in req.__struct_fields__
                                   if (v := getattr(req, k)) is not msgspec.UNSET}
        if "content" in changes:
            changes["content"] = msgspec.to_builtins(output_content(req.content))  # type: ignore[arg-type]
        if "metadata" in changes and changes["metadata"] is None:
            changes["metadata"] = {}

        def edit(old: bytes) -> bytes:
            obj = decode_object(old) or {}
            obj.update(changes)
            line = encoder.encode(obj)
            # The limit holds for edits too; a line Jan wrote over it may still shrink or stay.
            if len(line) > self.config.max_line_bytes and len(line) > len(old):
                raise PayloadTooLarge(
                    f"Message is too large: {len(line)} bytes encoded, the limit is "
                    f"{self.config.max_line_bytes}.", param="content")
            return line

        await self._rewrite(thread_id, message_id, edit)
        return await self.get_message(thread_id, message_id)

    async def delete_message(self, thread_id: str, message_id: str) -> bytes:
        await self._rewrite(thread_id, message_id, lambda old: None)
        return encoder.encode(DeletedMessage(id=message_id))

    async def _rewrite(self, thread_id: str, message_id: str, edit: Any) -> None:
        entry = await self.thread(thread_id)
        if entry.messages.find(message_id) < 0:
            synced = await self.indexer.sync(thread_id)  # it may be newer than the index
            if synced is None or synced.messages.find(message_id) < 0:
                raise message_not_found(message_id)
        folder = self.threads_dir / thread_id
        path = folder / MESSAGES

        def run() -> tuple[bytes, FileState] | None:
            result = rewrite_message(folder, message_id, edit, self.durable)
            if not result.found:
                return None
            st = os.stat(path)
            return result.data, FileState(ino=st.st_ino, size=len(result.data),
                                          mtime_ns=st.st_mtime_ns)

        async with self.indexer.lock(thread_id):
            done = await self._exclusive(thread_id, run)
            if done is None:
                raise message_not_found(message_id)
            self.indexer.apply_rewrite(thread_id, done[0], done[1])

    async def message_files(self, thread_id: str, message_id: str) -> list[MessageFile]:
        def read(entry: ThreadEntry) -> list[MessageFile]:
            # The stored line, not the served one: legacy `file_ids` are not in the served shape.
            raw = stored_line(self.catalog, entry, self._slot(entry, message_id))
            obj = decode_object(raw)
            if obj is None or line_id(raw) != message_id:
                raise Stale(thread_id)
            created = normalize.created_seconds(obj)
            return [MessageFile(id=f, created_at=created, message_id=message_id)
                    for f in normalize.file_ids(obj)]
        result: list[MessageFile] = await self._read(thread_id, read)
        return result
