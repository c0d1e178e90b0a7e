"""Message operations: create (group-committed append), list, get, modify and delete (atomic
rewrite), and the v1 message files."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import msgspec

from ..errors import (
    Conflict,
    InvalidRequest,
    PayloadTooLarge,
    message_not_found,
)
from ..index.catalog import FileState, ThreadEntry
from ..index.paging import Order, Visible, page
from ..index.reader import Stale, message_bytes, page_data, stored_line
from ..models import DeletedMessage, MessageFile, encoder
from ..requests import CreateMessage, ModifyMessage, output_content
from ..store import deleted, normalize
from ..store.lines import decode_object, decode_object_exact, line_id
from ..store.metadata import metadata, metadata_to_store
from ..store.rewrite import rewrite_message
from .base import RepoBase, check_metadata, list_envelope

GONE_STEPS = 4096  # deleted neighbours a cursor's place is looked for through (KEEP's worth)


def _position(entry: ThreadEntry, message_id: str) -> float | None:
    """Where a cursor id stands in the thread: its slot; for a message deleted lately, just
    after the nearest message listed before it that is still there (looked for through others
    deleted since), so paging on from the last id of a page whose messages were deleted
    meanwhile neither fails nor skips; None: an id the thread never had (or not lately)."""
    index = entry.messages
    slot = index.find(message_id)
    if slot >= 0:
        return slot
    noted: dict[str, list[str]] | None = None  # deletions any process noted (store/deleted.py)
    todo, seen = deque([message_id]), {message_id}
    while todo and len(seen) <= GONE_STEPS:
        gone_id = todo.popleft()
        if gone_id in entry.gone:
            before = entry.gone[gone_id]
            neighbours = [] if before is None else [before]
        else:
            if noted is None:
                noted = deleted.records(entry.folder)
            if gone_id not in noted:
                continue
            neighbours = noted[gone_id]
        if not neighbours:
            return -0.5  # it was the first
        for neighbour in neighbours:  # nearest first
            if (slot := index.find(neighbour)) >= 0:
                return slot + 0.5
        for neighbour in neighbours:
            if neighbour not in seen:
                seen.add(neighbour)
                todo.append(neighbour)
    return None


class MessageOps(RepoBase):
    async def create_message(self, thread_id: str, req: CreateMessage) -> bytes:
        entry = await self.thread(thread_id)
        line = self._new_line(thread_id, req, int(time.time()))
        await self._keep_date(entry)
        with self._folder_of(thread_id):
            offset = await self.writer(thread_id).append(line)
        await self.indexer.sync_through(thread_id, offset, line)
        self._wrote(thread_id)
        return line

    async def get_message(self, thread_id: str, message_id: str) -> bytes:
        def read(entry: ThreadEntry) -> bytes:
            return message_bytes(self.catalog, entry, self._slot(entry, message_id))
        result: bytes = await self._read(thread_id, read)
        return result

    async def list_messages(self, thread_id: str, limit: int, order: Order, after: str | None,
                            before: str | None, run_id: str | None) -> bytes:
        def read(entry: ThreadEntry) -> bytes:
            index = entry.messages
            cursors: list[float | None] = []
            for name, value in (("after", after), ("before", before)):
                at = _position(entry, value) if value else None
                if value and at is None:
                    raise InvalidRequest(
                        f"Invalid '{name}': no message found with id '{value}'.", param=name)
                cursors.append(at)
            holes = index.holes()  # lines whose id a later line repeats: not listed
            seq: Sequence[int]
            if run_id is not None:
                seq = [s for s in index.slots_with_run(run_id) if s not in index.shadowed]
            else:
                seq = Visible(len(index), *holes) if holes else range(len(index))
            slots, more = page(seq, limit, order, cursors[0], cursors[1])
            data = page_data(self.catalog, entry, slots)
            first = index.id_at(slots[0]) if slots else None
            last = index.id_at(slots[-1]) if slots else None
            return list_envelope(data, first, last, more)
        result: bytes = await self._read(thread_id, read)
        return result


    async def modify_message(self, thread_id: str, message_id: str, req: ModifyMessage) -> bytes:
        changes: dict[str, Any] = {k: msgspec.to_builtins(v) for k in req.__struct_fields__
                                   if (v := getattr(req, k)) is not msgspec.UNSET}
        if "content" in changes:
            changes["content"] = msgspec.to_builtins(output_content(req.content))  # type: ignore[arg-type]
        for moment in ("completed_at", "incomplete_at"):
            if changes.get(moment) == 0:  # "not set", as Jan writes it: served as null anyway
                changes[moment] = None
        if "metadata" in changes:
            if changes["metadata"] is None:
                changes["metadata"] = {}
            # Refused before the rewrite takes the lock (and checked again against the line it
            # rewrites, in case another program changed it meanwhile).
            served = msgspec.json.decode(await self.get_message(thread_id, message_id))
            check_metadata(changes["metadata"], served.get("metadata") or {})  # null if stored so

        def edit(old: bytes) -> bytes:
            obj = decode_object_exact(old)
            if obj is None:  # indexed by its id, but the rest does not parse (a 5000-digit
                # number, say): rewriting it from the changes alone would destroy the message.
                raise Conflict(f"Message '{message_id}' is stored in a form that cannot be "
                               "parsed, so it cannot be modified.", param="message_id")
            stored_metadata = obj.get("metadata")
            if "metadata" in changes:
                check_metadata(changes["metadata"], metadata(stored_metadata))
            obj.update(changes)
            if "metadata" in changes:
                obj["metadata"] = metadata_to_store(changes["metadata"], stored_metadata)
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
        await self._rewrite(thread_id, message_id, lambda old: None, every=True)
        return encoder.encode(DeletedMessage(id=message_id))

    async def _rewrite(self, thread_id: str, message_id: str, edit: Any, every: bool = False
                       ) -> None:
        entry = await self.thread(thread_id)
        await self._keep_date(entry)
        if (slot := entry.messages.find(message_id)) < 0:
            synced = await self.indexer.sync(thread_id)  # it may be newer than the index
            if synced is None or (slot := synced.messages.find(message_id)) < 0:
                raise message_not_found(message_id)
            entry = synced
        folder = self.threads_dir / thread_id
        # A delete notes where the message stood, for cursors in any process (store/deleted.py).
        neighbours = entry.messages.listed_before(slot, deleted.BEFORE) if every else None

        def run() -> tuple[bytes, FileState] | None:
            result = rewrite_message(folder, message_id, edit, self.durable, every, neighbours)
            if not result.found or result.stat is None:
                return None
            st = result.stat
            return result.data, FileState(ino=st.st_ino, size=len(result.data),
                                          mtime_ns=st.st_mtime_ns)

        async with self.indexer.lock(thread_id):
            done = await self._exclusive(thread_id, run)
            if done is not None:
                self.indexer.apply_rewrite(thread_id, done[0], done[1])
                self._wrote(thread_id)
        if done is None:
            # The index has it, the file not (another program removed it a moment ago): bring
            # the index in step before answering, or a get would still find it.
            await self.indexer.sync(thread_id, stale=entry.messages)
            raise message_not_found(message_id)

    async def message_files(self, thread_id: str, message_id: str) -> list[MessageFile]:
        def read(entry: ThreadEntry) -> list[MessageFile]:
            # The stored line, not the served one: legacy `file_ids` are not in the served shape.
            raw = stored_line(self.catalog, entry, self._slot(entry, message_id))
            if line_id(raw) != message_id:
                raise Stale(thread_id)
            obj = decode_object(raw) or {}  # unreadable beyond its id: it names no files
            created = normalize.created_seconds(obj)
            return [MessageFile(id=f, created_at=created, message_id=message_id)
                    for f in normalize.file_ids(obj)]
        result: list[MessageFile] = await self._read(thread_id, read)
        return result

