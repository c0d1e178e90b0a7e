"""Thread operations: list, create (folder built aside, renamed into place), modify, delete."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any

import msgspec

from ..errors import InvalidRequest, thread_not_found
from ..ids import new_thread_id
from ..index.catalog import ThreadEntry
from ..index.paging import Order, page
from ..models import DeletedThread, encoder
from ..requests import CreateThread, ModifyThread
from ..store import normalize
from ..store.files import NotAFile, fsync_dir, read_file, remove_folder, thread_locked
from ..store.layout import MESSAGES, THREAD_JSON
from ..store.lines import decode_object_exact
from ..store.metadata import metadata_to_store
from ..store.replace import Changed, holds, write_atomic
from ..store.threadjson import thread_json_bytes
from .base import RepoBase, check_metadata, list_envelope

SETTLE_TRIES = 10
SETTLE_SECONDS = 0.02
EDIT_TRIES = 5  # reads of thread.json a modify makes when Jan rewrites it meanwhile


def read_thread_json(path: Path, durable: bool) -> tuple[dict[str, Any] | None, bytes | None]:
    """thread.json as an object to modify (None if there is none or it is no JSON object), with
    the bytes it was read from (None: no file). One that does not parse exactly is most often
    Jan's, caught mid-rewrite (it truncates, then writes, without a lock): read again a few
    times; if it stays so, keep its bytes beside it (hidden) before it is replaced, so a title or
    assistant settings are never lost, and take what it holds with invalid UTF-8 read as U+FFFD
    (as it is served), if that is all that was wrong."""
    for attempt in range(SETTLE_TRIES):
        try:
            raw = read_file(path)
        except (FileNotFoundError, NotAFile):
            return None, None
        found = decode_object_exact(raw)
        if found is not None:
            return found, raw
        if attempt + 1 < SETTLE_TRIES:
            time.sleep(SETTLE_SECONDS)  # in a worker thread, holding the thread lock
    write_atomic(path.with_name(f".thread.json.unreadable-{time.time_ns()}"), raw, durable)
    # A stray byte read as U+FFFD, as it is served: its assistants and dates are kept, the exact
    # bytes are in the copy beside it. Only that: `decode_object` would also read 1e400 as
    # infinity, which json.dumps writes as `Infinity`, no JSON (Jan could no longer read it).
    return decode_object_exact(raw.decode(errors="replace").encode()), raw


def _set_metadata(doc: dict[str, Any], meta: dict[str, str], thread_id: str) -> None:
    """A modify's metadata into thread.json. The title clients see (metadata.title) is Jan's
    top-level `title`, what the app shows, unless the metadata has a title of its own:
    - a title sent as served changes nothing (a long one served cut to 512 characters keeps its
      whole; the metadata's own null or number stays as it is);
    - a title changed goes to the top level, so Jan shows it (and Jan's renames show here): the
      metadata's own title gives way to it. An empty one is also noted in the metadata, since an
      empty top-level title is not served;
    - a title served from the top level and not sent back is cleared there; any other (the
      metadata's own, or one not served at all because the metadata had 16 keys) leaves the
      top-level title alone, so no title a client never saw is lost.
    The rest replaces the metadata, Jan's non-string values kept where sent back unchanged."""
    stored = doc.get("metadata")
    stored = stored if isinstance(stored, dict) else {}
    top = doc.get("title")
    served = normalize.thread(doc, thread_id, 0).metadata or {}
    check_metadata(meta, served)
    own = "title" in stored and stored["title"] != ""  # "" notes an empty top-level title
    title = meta.pop("title", None)
    if title is not None:
        if title == served.get("title"):
            if "title" in stored:
                meta["title"] = title
        else:
            if not (isinstance(top, str) and top[:512] == title):
                doc["title"] = title
            if title == "":
                meta["title"] = ""
    elif "title" in served and not own and isinstance(top, str) and top:
        doc["title"] = ""
    doc["metadata"] = metadata_to_store(meta, stored)


class ThreadOps(RepoBase):
    async def list_threads(self, limit: int, order: Order, after: str | None,
                           before: str | None) -> bytes:
        if self.peers is not None:
            await self.peers.threads()
        ordered = self.catalog.ordered()
        positions = {e.id: i for i, e in enumerate(ordered)} if (after or before) else {}
        cursors = [positions.get(c) if c else None for c in (after, before)]
        for name, value, pos in (("after", after, cursors[0]), ("before", before, cursors[1])):
            if value and pos is None:
                raise InvalidRequest(f"Invalid '{name}': no thread found with id '{value}'.",
                                     param=name)
        slots, more = page(range(len(ordered)), limit, order, cursors[0], cursors[1])
        items = [ordered[i] for i in slots]
        data = b",".join([e.thread_bytes for e in items])
        return list_envelope(data, items[0].id if items else None,
                             items[-1].id if items else None, more)

    async def create_thread(self, req: CreateThread) -> ThreadEntry:
        thread_id = new_thread_id()
        now = int(time.time())
        doc: dict[str, Any] = {"id": thread_id, "object": "thread", "created_at": now,
                               "metadata": {},
                               "tool_resources": msgspec.to_builtins(req.tool_resources)}
        # As for a modify: a title goes to the top level, where the Jan app looks for it.
        _set_metadata(doc, dict(req.metadata or {}), thread_id)
        lines = [self._new_line(thread_id, m, now, f"messages[{i}].")
                 for i, m in enumerate(req.messages)]
        await asyncio.get_running_loop().run_in_executor(None, self._create_folder, thread_id,
                                                         doc, lines)
        entry = await self.indexer.sync(thread_id)
        self._wrote(thread_id, thread_set=True)
        if entry is None:  # another program removed it already
            raise thread_not_found(thread_id)
        return entry

    def _create_folder(self, thread_id: str, doc: dict[str, Any], lines: list[bytes]) -> None:
        """Build the folder under a hidden name, then rename it into place: other readers (the
        watcher, Jan) never see a thread without its thread.json."""
        self.threads_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.threads_dir / f".new-{thread_id}"
        tmp.mkdir()
        try:
            write_atomic(tmp / MESSAGES, b"".join(line + b"\n" for line in lines), self.durable)
            write_atomic(tmp / THREAD_JSON, thread_json_bytes(doc), self.durable)
            os.rename(tmp, self.threads_dir / thread_id)
        except OSError:
            # A full disk, say: the refused create leaves nothing (not even the space its
            # messages took), rather than a hidden folder until a start-up five minutes on.
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if self.durable:
            fsync_dir(self.threads_dir)

    async def modify_thread(self, thread_id: str, req: ModifyThread) -> ThreadEntry:
        entry = await self.thread(thread_id)
        if req.metadata is not msgspec.UNSET:  # refused before the lock (checked again under it)
            check_metadata(dict(req.metadata or {}), entry.thread.metadata or {})

        def edit() -> None:
            path = entry.folder / THREAD_JSON
            with thread_locked(entry.folder):
                for attempt in range(EDIT_TRIES):
                    found, raw = read_thread_json(path, self.durable)
                    doc = found if found is not None else {
                        "id": thread_id, "object": "thread", "created_at": entry.thread.created_at}
                    if not normalize.created_seconds(doc):
                        # Served from the folder's mtime, which this very rewrite moves: keep the
                        # time clients were shown, or every modify would change it.
                        doc["created_at"] = entry.thread.created_at
                    if req.metadata is not msgspec.UNSET:
                        _set_metadata(doc, dict(req.metadata or {}), thread_id)
                    if req.tool_resources is not msgspec.UNSET:
                        doc["tool_resources"] = msgspec.to_builtins(req.tool_resources)
                    # Jan rewrites thread.json without the lock (a rename, a setting): made
                    # meanwhile, its change would be lost under ours; read it again and redo ours.
                    last = attempt + 1 == EDIT_TRIES
                    try:
                        write_atomic(path, thread_json_bytes(doc), self.durable,
                                     unchanged=None if last else holds(path, raw))
                        return
                    except Changed:
                        continue

        await self._exclusive(thread_id, edit)
        synced = await self.indexer.sync(thread_id)
        self._wrote(thread_id, thread_set=True)
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
            remove_folder(hidden)

        async with self.indexer.lock(thread_id):
            try:
                await self.writer(thread_id).exclusive(remove)
            except (FileNotFoundError, NotADirectoryError):  # removed (or replaced) meanwhile
                self.indexer.apply_gone(thread_id)
                raise thread_not_found(thread_id) from None
            self._wrote(thread_id, thread_set=True)
            self.indexer.apply_gone(thread_id)
        self._writers.pop(thread_id, None)
        return encoder.encode(DeletedThread(id=thread_id))

