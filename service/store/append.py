"""Appending whole lines to a thread's messages.jsonl under the thread lock, beside writers that
take no lock: a torn last line is waited for (another writer between its two writes) or closed,
a file replaced meanwhile opened again, lines glued to another writer's line moved off it.

Called from a worker thread (store/writer.py batches the lines of concurrent creates).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .files import fsync_dir, open_file, thread_locked, write_all
from .layout import MESSAGES

# A last line without its newline, written this recently, may be another writer's between two
# writes: the Jan app (0.6) appends a message with `writeln!`, the JSON and then the newline in a
# write of its own. An append waits this long for that newline before closing the line itself:
# closing it at once made the two newlines an empty line, which Jan cannot read past.
TORN_RECENT_NS = 2_000_000_000
TORN_WAIT = 0.1  # seconds
TORN_POLL = 0.001


class Appended(NamedTuple):
    """Where appended lines start, and the file as it stood right after (for the index) and
    right before: the index takes the lines from the bytes written only if the file it indexed
    is the one appended to, unchanged (another program may have rewritten it in place)."""

    start: int
    ino: int
    size: int
    mtime_ns: int
    before: tuple[int, int, int]  # (ino, size, mtime_ns) just before the write
    # The first line, when another writer's line begun before it never ended: glued to it, in
    # one corrupt line, never served. The others are whole (from `start` + its length + 1).
    lost_first: bool = False


def tail_state(fd: int, st: os.stat_result) -> tuple[bool, os.stat_result]:
    """Whether the file ends on a line end (or is empty), and its state then: waiting up to
    TORN_WAIT for the newline of a last line written within TORN_RECENT_NS. A file emptied
    meanwhile is being rewritten in place by that writer (truncated, then written): waited for
    too, since an append landing in between would be written over."""
    if not st.st_size or os.pread(fd, 1, st.st_size - 1) == b"\n":
        return True, st
    if time.time_ns() - st.st_mtime_ns > TORN_RECENT_NS:
        return False, st  # left by a writer that died mid-line: closed at once
    deadline = time.monotonic() + TORN_WAIT
    while time.monotonic() < deadline:
        time.sleep(TORN_POLL)
        st = os.fstat(fd)
        if st.st_size and os.pread(fd, 1, st.st_size - 1) == b"\n":
            return True, st
    return not st.st_size, st


_REOPENS = 5  # times an append opens the file again when it was replaced while it waited


class Contended(Exception):
    """The append could not be made whole: the file kept being replaced while it waited, or
    it was rewritten in place under it, or its first line stayed glued to another writer's
    (`Appended.lost_first`). Not acknowledged."""


def append_lines(folder: Path, data: bytes, durable: bool,
                 written: Callable[[Appended], None] | None = None) -> Appended:
    """Append whole lines to the thread's messages.jsonl under the thread lock; return where the
    first of them starts, and the file as it stood after the write. A torn last line is closed
    with a newline first (once it is clear that no writer is about to close it: `tail_state`),
    so the new lines start on a fresh line and the torn bytes become one (corrupt) line.

    A writer that takes no lock may start a line between the check of the file's end and the
    write (a Jan-style writer: the JSON, then the newline in a write of its own); the lines just
    written are then moved off it once its newline comes (`_unglue`), or, if none comes, the
    first of them is given up (`lost_first`). A file replaced while the append waited is opened
    again.

    `written` is told as soon as the lines are in the file, before the fsync: from then on every
    reader of the file sees them, so the index and the event streams may too. The caller's answer
    still waits for the fsync."""
    lines = len(data)
    path = folder / MESSAGES
    with thread_locked(folder):
        for _ in range(_REOPENS + 1):
            # Never through a symbolic link: one planted in the folder would have the API write
            # into whatever file it names (ELOOP: a 409, the file is not a regular one).
            fd = open_file(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW)
            try:
                first = os.fstat(fd)
                ends_a_line, pre = tail_state(fd, first)
                if pre is not first and not _names(path, pre):
                    # It waited, and the file was replaced meanwhile (renamed over by its
                    # writer): lines appended to the old one would be lost with it.
                    continue
                out = data if ends_a_line else b"\n" + data
                write_all(fd, out)
                # Where the lines start, from where the write ended: a writer that does not
                # take the lock may have appended between the fstat and the write.
                end = os.lseek(fd, 0, os.SEEK_CUR)
                start, lost_first = end - lines, False
                if ends_a_line and start != pre.st_size and start and os.pread(
                        fd, 1, start - 1) != b"\n":
                    moved = _unglue(fd, data, end)
                    start, lost_first = (start, True) if moved is None else (moved, False)
                st = os.fstat(fd)  # an fsync changes neither size nor mtime
                done = Appended(start, st.st_ino, st.st_size, st.st_mtime_ns,
                                (pre.st_ino, pre.st_size, pre.st_mtime_ns), lost_first)
                if written is not None:
                    written(done)
                if durable:
                    os.fdatasync(fd)
                    if pre.st_size == 0:  # the file may be new: its directory entry too
                        fsync_dir(folder)
                return done
            finally:
                os.close(fd)
    raise Contended(f"{path} was replaced again and again while an append waited")


def _unglue(fd: int, data: bytes, end: int) -> int | None:
    """`data` (whole lines), just written to end at `end`, follows the first part of another
    writer's line: its JSON landed between the append's check and its write, and its newline
    is still to come (a Jan-style writer). Once that newline has landed at `end`, `data` is
    written again one byte on, in place, behind a newline: both writers' lines whole. Returns
    where the lines start now; None when no newline came within TORN_WAIT, or something else
    did (a third writer): the first line stays glued (a corrupt line), the others are whole."""
    began = end - len(data)
    deadline = time.monotonic() + TORN_WAIT
    while not (after := os.pread(fd, 1, end)) and time.monotonic() < deadline:
        time.sleep(TORN_POLL)
    if after != b"\n":
        # The other lines are acknowledged where they were written: only if they are still
        # there (a program rewriting the file in place writes from where it truncated it).
        rest = data.index(b"\n") + 1
        if rest < len(data) and os.pread(fd, len(data) - rest, began + rest) != data[rest:]:
            raise Contended("the file was rewritten in place under an append")
        return None
    moved = b"\n" + data
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_APPEND)  # pwrite at an offset, not at the end
    try:
        # Only over our own bytes and that newline: a program that rewrote the file in place
        # meanwhile left something else there (a window of microseconds remains).
        if os.pread(fd, len(moved), began) != data + b"\n":
            raise Contended("the file was rewritten in place under an append")
        view, at = memoryview(moved), began
        while view:
            n = os.pwrite(fd, view, at)
            view, at = view[n:], at + n
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    # Same size as before the move; on a coarse clock maybe the same mtime: moved on, so every
    # reader that indexed the file in between (another process too) reads it again.
    st = os.fstat(fd)
    try:
        os.utime(fd, ns=(st.st_atime_ns, max(time.time_ns(), st.st_mtime_ns + 1)))
    except PermissionError:  # a file this process does not own (Jan's): "now" is allowed
        with contextlib.suppress(OSError):
            os.utime(fd)
    except OSError:  # the lines are moved and whole: that is what counts
        pass
    return began + 1


def _names(path: Path, st: os.stat_result) -> bool:
    """Whether `path` is still the file `st` was taken of."""
    try:
        now = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)
