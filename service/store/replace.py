"""Replacing a file atomically (temp file, fsync, rename), following writers that take no lock.

Called from a worker thread. `write_atomic` is how a modify or a delete replaces
`messages.jsonl` (store/rewrite.py) and how `thread.json` is written (store/threadjson.py).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from .append import TORN_POLL, TORN_RECENT_NS, TORN_WAIT, tail_state
from .files import NotAFile, fsync_dir, open_file, read_file, read_rest, write_all
from .layout import MESSAGES, THREAD_JSON

log = logging.getLogger(__name__)

# Seconds a rewrite goes on following the old file after its rename. Without it a lock-less
# writer's line lost in each 30 s race against API modifies and deletes went with the old file;
# with it such a line is kept, after the writer's next lines if it wrote them meanwhile.
FOLLOW_GRACE = 0.01


class Changed(Exception):
    """Another program rewrote a file between its read and its replacement (`write_atomic`'s
    `unchanged`): the replacement was not made."""


def holds(path: Path, raw: bytes | None) -> Callable[[], bool]:
    """A check that `path` still holds `raw` (None: that there is no such file), for
    `write_atomic`'s `unchanged`."""
    def check() -> bool:
        try:
            return read_file(path) == raw
        except (FileNotFoundError, NotAFile):
            return raw is None
    return check


class Follower:
    """The old file of a rewrite, read on from where the rewrite's own read of it ended (`fd`):
    what writers that take no lock append to it while it is replaced."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.stalled = False  # a wait for the newline of its last line ended without it

    def read(self) -> bytes:
        return read_rest(self.fd)

    def recent(self) -> bool:
        """Whether the file was written to lately (a line left unfinished may be in progress)."""
        return time.time_ns() - os.fstat(self.fd).st_mtime_ns <= TORN_RECENT_NS

    def more(self, copied: bytes) -> bytes:
        """What was appended since the last read, and when the copy (`copied`: its last part, or
        what the rewrite copied before) then ends inside a line another writer is still
        writing, the rest of that line: a `write(2)` becomes visible a page at a time, so a read
        may take the first part of one in progress, whose rest would land in the replaced file
        (lost) and the line be cut short in the new one. Waits up to TORN_WAIT for the newline,
        as an append does (`append.tail_state`), once: a line still unfinished then (its writer
        died, or writes it in parts) is copied as it stands, and not waited for again."""
        more = self.read()
        last = more or copied
        if not last or last.endswith(b"\n") or self.stalled or not (more or self.recent()):
            return more
        deadline = time.monotonic() + TORN_WAIT
        while time.monotonic() < deadline:
            time.sleep(TORN_POLL)
            more += self.read()
            if more.endswith(b"\n"):
                return more
        self.stalled = True
        return more


def write_atomic(path: Path, data: bytes, durable: bool, follow: Follower | None = None,
                 unchanged: Callable[[], bool] | None = None) -> bytes:
    """Replace `path` with `data`: temp file in the same folder, fsync, rename, fsync the folder.

    `follow`, when given, is the old file (its end was copied into `data`): what writers that
    take no lock append to it is added to the temp file until none comes, and what lands in it
    from then until a moment after the rename is appended to the new file (after what such
    writers appended to the new one meanwhile), so their lines survive the replacement. Returns
    the new file's content as far as it was written or read here. `unchanged`, when given, is
    asked last before the rename: False (a writer that takes no lock, Jan, rewrote the file
    since it was read) raises `Changed` and leaves the file as it is. The window left is the
    check's own read and the rename (an in-place write landing there goes to the file the rename
    replaces), not the read, the edit, the write and the fsync."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    parts = [data]
    try:
        write_all(fd, data)
        if durable:
            os.fsync(fd)
        if follow is not None:  # what is appended meanwhile, until none comes
            while more := follow.more(parts[-1] or data):
                write_all(fd, more)
                parts.append(more)
                if durable:
                    os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    if unchanged is not None:
        try:
            same = unchanged()
        except BaseException:  # the check could not read the file (permissions, EIO)
            tmp.unlink(missing_ok=True)
            raise
        if not same:
            tmp.unlink(missing_ok=True)
            raise Changed(str(path))
    try:
        os.replace(tmp, path)
    except IsADirectoryError:  # a directory where the file goes: nothing to replace it with
        tmp.unlink(missing_ok=True)
        raise NotAFile(errno.EISDIR, "not a regular file", str(path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    written = b"".join(parts) if len(parts) > 1 else data
    if follow is not None:
        written += _carry_late(path, follow, written, durable)
    if durable:
        fsync_dir(path.parent)
    return written


def _carry_late(path: Path, follow: Follower, written: bytes, durable: bool) -> bytes:
    """After the rename: a program that takes no lock may have opened the old file just before
    it and not written yet (descheduled between its open and its write). A moment later, what
    it wrote there is appended to the new file, as an append of this process would be (on a
    fresh line, not between the two writes of a line another writer is writing). Returns what
    the new file holds after `written` then: lines such writers appended to it since the rename
    (which come before the late ones: those are out of order, but kept), then the late ones."""
    time.sleep(FOLLOW_GRACE)
    late = follow.more(written)
    if not late:
        return b""
    try:
        # As every write into a thread folder: never through a symbolic link planted there,
        # never into something that is no regular file.
        fd = open_file(path, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW)
    except OSError:  # replaced meanwhile by something else, or gone: the rewrite itself is done
        log.warning("could not carry a late line into %s", path, exc_info=True)
        return b""
    try:
        ends_a_line, _ = tail_state(fd, os.fstat(fd))
        write_all(fd, late if ends_a_line else b"\n" + late)
        if durable:
            os.fsync(fd)
        os.lseek(fd, len(written), os.SEEK_SET)
        return read_rest(fd)
    finally:
        os.close(fd)


def remove_stale_temps(folder: Path) -> None:
    """Delete temp files `write_atomic` left in `folder` when its process died mid-rewrite. The
    caller holds the thread lock, and every rewrite in a thread folder runs under it, so no temp
    file there belongs to a rewrite still in progress."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and any(
                    entry.name.startswith(f".{name}.") for name in (MESSAGES, THREAD_JSON)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
