"""The in-memory catalog: every thread with its served object and its message index.

Pure data, no I/O: `index.sync` fills it from the files; the API reads it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..models import Thread, encoder
from ..store.files import open_file
from .cache import LineCache, entry_uids
from .messages import MessageIndex


@dataclass(eq=False)
class FileState:
    """What the index last saw of a file: enough to tell an append from a rewrite."""

    ino: int = 0
    size: int = 0
    mtime_ns: int = 0


@dataclass
class Tail:
    """The indexed end, and where the last whole line before it starts, its length and CRC-32."""

    end: int = 0
    start: int = 0
    length: int = 0
    crc: int = 0


GONE_KEPT = 4096  # deleted message ids remembered per thread (for list cursors)


@dataclass(eq=False)
class ThreadEntry:
    id: str
    folder: Path
    thread: Thread
    thread_json: FileState | None = None  # None: no thread.json (messages only)
    # thread.json gives no time: the thread is dated by its first message or its folder's mtime,
    # which writes move; the first write puts the date shown into thread.json (repo/base.py).
    undated: bool = False
    messages: MessageIndex = field(default_factory=MessageIndex)
    file: FileState | None = None  # messages.jsonl as indexed; None: no file
    tail: Tail = field(default_factory=Tail)  # indexed end; last line (detects in-place rewrites)
    generation: int = 0  # moves on every whole read of the file (also the line cache's keys)
    # Moves when another program appends, since an edit in place that kept every length may have
    # come with it: the line cache serves Jan-shaped lines without reading them, and reads a
    # line again before it serves a value held from before (index/cache.py).
    trust: int = 0
    # Messages deleted lately -> the message just before each in the file then (None: it was
    # first): a list cursor naming one still finds its place (a client deleting the messages it
    # pages through). GONE_KEPT at most, oldest dropped first.
    gone: dict[str, str | None] = field(default_factory=dict)
    fd: int | None = None  # cached read descriptor for messages.jsonl (see Catalog.read_fd)
    uid: int = field(default_factory=lambda: next(entry_uids))  # never reused (cache keys)
    # (length, CRC-32) of the corrupt lines logged (index/damage.py): kept across rewrites of
    # the file, so a line moved by another program's rewrite is not logged again
    logged: set[tuple[int, int]] = field(default_factory=set)
    _thread_bytes: bytes | None = None

    @property
    def thread_bytes(self) -> bytes:
        if self._thread_bytes is None:
            self._thread_bytes = encoder.encode(self.thread)
        return self._thread_bytes

    def set_thread(self, thread: Thread) -> None:
        self.thread = thread
        self._thread_bytes = None

    def close_fd(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Catalog:
    """Threads by id, plus the list order (newest first) computed once per change."""

    MAX_OPEN_FDS = 256

    def __init__(self, cache_bytes: int = 64 << 20) -> None:
        self.threads: dict[str, ThreadEntry] = {}
        self.lines = LineCache(cache_bytes)
        self._order: list[ThreadEntry] | None = None
        self._open: dict[str, ThreadEntry] = {}  # insertion order = least recently opened first
        self.ready = False

    def get(self, thread_id: str) -> ThreadEntry | None:
        return self.threads.get(thread_id)

    def put(self, entry: ThreadEntry) -> None:
        self.threads[entry.id] = entry
        self._order = None

    def remove(self, thread_id: str) -> ThreadEntry | None:
        entry = self.threads.pop(thread_id, None)
        if entry is not None:
            self._open.pop(thread_id, None)
            entry.close_fd()
            self._order = None
        return entry

    def touch_order(self) -> None:
        self._order = None

    def ordered(self) -> list[ThreadEntry]:
        """Threads oldest first (by created_at, then id); list endpoints walk it either way."""
        if self._order is None:
            self._order = sorted(self.threads.values(), key=lambda e: (e.thread.created_at, e.id))
        return self._order

    def read_fd(self, entry: ThreadEntry) -> int:
        """An open descriptor for the thread's messages.jsonl, kept for later reads (bounded)."""
        if entry.fd is None:
            path = entry.folder / "messages.jsonl"
            entry.fd = open_file(path, os.O_RDONLY)
            self._open[entry.id] = entry
            if len(self._open) > self.MAX_OPEN_FDS:
                oldest = next(iter(self._open))
                self._open.pop(oldest).close_fd()
        return entry.fd

    def forget_fd(self, entry: ThreadEntry) -> None:
        self._open.pop(entry.id, None)
        entry.close_fd()

    def close(self) -> None:
        for entry in self.threads.values():
            entry.close_fd()
        self._open.clear()

    def stats(self) -> tuple[int, int, int]:
        """(threads, messages, corrupt lines)."""
        messages = corrupt = 0
        for entry in self.threads.values():
            messages += len(entry.messages)
            corrupt += len(entry.messages.corrupt)
        return len(self.threads), messages, corrupt
