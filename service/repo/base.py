"""Shared ground of the repository: state, per-thread writers, thread lookup, the read retry."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import (
    Conflict,
    InvalidRequest,
    PayloadTooLarge,
    Unavailable,
    UnknownMessage,
    message_not_found,
    thread_not_found,
)
from ..ids import is_thread_id, new_message_id
from ..index.catalog import Catalog, ThreadEntry
from ..index.peers import Peers
from ..index.reader import Stale, check_current
from ..index.sync import Indexer
from ..models import Message, encoder
from ..requests import CreateMessage, output_content
from ..store.append import Contended
from ..store.files import NotAFile
from ..store.resident import NotResident, Reader, attempt
from ..store.threadjson import pin_created
from ..store.writer import ThreadWriter


def check_metadata(sent: dict[str, str], served: dict[str, str]) -> None:
    """OpenAI's limits on a modify's metadata (16 keys, keys of 64 characters, values of 512),
    but for the pairs sent back as they were served. Jan writes past them (objects served as
    their JSON text, often longer than 512; more keys), and a client that reads the metadata,
    changes one key and sends it all back must not be refused for what Jan wrote."""
    changed = [(k, v) for k, v in sent.items() if served.get(k) != v]
    for key, value in changed:
        if len(key) > 64:
            raise InvalidRequest(f"Invalid request body: metadata key '{key[:64]}...' is longer "
                                 "than 64 characters.", param="metadata")
        if len(value) > 512:
            raise InvalidRequest(f"Invalid request body: the value of metadata key '{key}' is "
                                 "longer than 512 characters.", param="metadata")
    if len(sent) > 16 and changed:
        raise InvalidRequest(f"Invalid request body: metadata has {len(sent)} keys; at most 16 "
                             "(more only when sent back unchanged).", param="metadata")


def list_envelope(data: bytes, first: str | None, last: str | None, more: bool) -> bytes:
    """A list response around `data`, already-encoded objects joined by commas (no decode or
    encode of the items)."""
    tail = encoder.encode({"first_id": first, "last_id": last, "has_more": more})
    return b"".join((b'{"object":"list","data":[', data, b"],", memoryview(tail)[1:]))


class RepoBase:
    def __init__(self, config: Config, catalog: Catalog, indexer: Indexer,
                 peers: Peers | None = None) -> None:
        self.config = config
        self.peers = peers  # other processes' writes, caught up with before a read (peers.py)
        self.threads_dir = config.threads_dir
        self.catalog = catalog
        self.indexer = indexer
        self.durable = config.fsync == "always"
        self._writers: dict[str, ThreadWriter] = {}
        self.on_append: Callable[[float], None] | None = None  # seconds per write+fsync (metrics)
        self.reader = Reader()  # reads on the loop that never wait for the disk (resident.py)

    def writer(self, thread_id: str) -> ThreadWriter:
        w = self._writers.get(thread_id)
        if w is None:
            w = self._writers[thread_id] = ThreadWriter(
                self.threads_dir / thread_id, self.durable, self.config.write_queue_limit,
                self.on_append,
                lambda data, done: self.indexer.apply_appended(thread_id, data, done))
        return w

    async def thread(self, thread_id: str) -> ThreadEntry:
        """The thread's entry. A miss whose folder exists (another process created it a moment
        ago, before the watcher reported it) is synced first, so a client can use a thread
        right after creating it through any process."""
        if not is_thread_id(thread_id):
            raise thread_not_found(thread_id)
        if self.peers is not None and self.peers.behind(thread_id):
            await self.peers.thread(thread_id)
        entry = self.catalog.get(thread_id)
        if entry is None and os.path.isdir(self.threads_dir / thread_id):
            entry = await self.indexer.sync(thread_id)
        if entry is None:
            raise thread_not_found(thread_id)
        return entry

    # --- threads --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _folder_of(self, thread_id: str) -> Iterator[None]:
        """A thread folder that vanished under a write (deleted meanwhile) is a 404; one whose
        messages.jsonl is a directory or a FIFO cannot be written (409); one another program
        kept writing at the same moment was not written (503, retry)."""
        try:
            yield
        except (FileNotFoundError, NotADirectoryError):
            raise thread_not_found(thread_id) from None
        except NotAFile as exc:
            name = Path(exc.filename).name if exc.filename else "a file of its folder"
            raise Conflict(f"Thread '{thread_id}' cannot be written: its {name} is not a regular "
                           "file.", param="thread_id") from None
        except Contended:
            raise Unavailable("Another program kept writing the thread's messages.jsonl at the "
                              "same moment; the message was not added. Retry.",
                              code="thread_busy") from None

    def _wrote(self, thread_id: str, thread_set: bool = False) -> None:
        """Tell other processes, before the write is acknowledged (see index/peers.py)."""
        if self.peers is not None:
            self.peers.wrote(thread_id, thread_set)

    async def _keep_date(self, entry: ThreadEntry) -> None:
        """Before the first write to a thread whose thread.json gives no time: write the date
        clients were shown into it. That date comes from the first message or the folder's
        mtime, which a write moves (a delete, the lock file, a temp file renamed in place)."""
        if entry.undated:
            with self._folder_of(entry.id):
                await asyncio.get_running_loop().run_in_executor(
                    None, pin_created, entry.folder, entry.thread.created_at, self.durable)
            await self.indexer.sync(entry.id)

    async def _exclusive(self, thread_id: str, fn: Any) -> Any:
        with self._folder_of(thread_id):
            return await self.writer(thread_id).exclusive(fn)

    # --- messages -------------------------------------------------------------------------------

    async def _read(self, thread_id: str, fn: Any, *args: Any) -> Any:
        """Run a read; if the file changed under the index, or the message is not (yet) in it,
        sync once and run it again."""
        # A thread in the catalog passed `is_thread_id` on its way in: no check.
        entry = self.catalog.get(thread_id)
        if entry is None or (self.peers is not None and self.peers.behind(thread_id)):
            entry = await self.thread(thread_id)
        try:
            try:
                return attempt(fn, entry, *args)  # from memory: no coroutine on the common path
            except NotResident as miss:
                again = partial(check_current, self.catalog, entry, entry.messages)
                return await self.reader.after_miss(miss, fn, entry, *args, again=again)
        except (Stale, FileNotFoundError, UnknownMessage):
            pass
        stale = None
        for _ in range(2):
            synced = await self.indexer.sync(thread_id, stale)
            if synced is None:
                raise thread_not_found(thread_id)
            try:
                again = partial(check_current, self.catalog, synced, synced.messages)
                return await self.reader.call(fn, synced, *args, again=again)
            except Stale:
                # The sync found nothing to change, yet the bytes are not the indexed ones
                # (edited in place): read the file whole once. Stale again: a writer is busy.
                stale = synced.messages
        raise Unavailable("The thread is being rewritten by another process or program; retry.",
                          code="thread_busy")

    def _slot(self, entry: ThreadEntry, message_id: str) -> int:
        slot = entry.messages.find(message_id)
        if slot < 0:
            raise message_not_found(message_id)
        return slot

    def _new_line(self, thread_id: str, req: CreateMessage, now: int, at: str = "") -> bytes:
        """The line of a new message; `at`: its place in the request body (`messages[2].`)."""
        msg = Message(id=new_message_id(), created_at=now, thread_id=thread_id,
                      role=req.role, content=output_content(req.content, at),
                      attachments=req.attachments or [], metadata=req.metadata or {})
        line = encoder.encode(msg)
        if len(line) > self.config.max_line_bytes:
            raise PayloadTooLarge(
                f"Message is too large: {len(line)} bytes encoded, the limit is "
                f"{self.config.max_line_bytes}.", param=f"{at}content")
        return line
