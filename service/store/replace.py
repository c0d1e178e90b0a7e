"""Replacing a file atomically (temp file, fsync, rename), following writers that take no lock.

Called from a worker thread. `write_atomic` is how a modify or a delete replaces
`messages.jsonl` (store/rewrite.py) and how `thread.json` is written (store/threadjson.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

from .files import TORN_POLL, TORN_WAIT, NotAFile, fsync_dir, read_file, write_all
from .layout import MESSAGES, THREAD_JSON

FOLLOW_GRACE = 0.01  # seconds a rewrite follows the old file after its rename


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


def write_atomic(path: Path, data: bytes, durable: bool,
                 follow: Callable[[], bytes] | None = None,
                 unchanged: Callable[[], bool] | None = None) -> bytes:
    """Replace `path` with `data`: temp file in the same folder, fsync, rename, fsync the folder.

    `follow`, when given, returns what writers that take no lock appended to the old file since
    it was last asked (its end was copied into `data`): that is added to the temp file until none
    comes, and what lands in the old file between the last ask and the rename is appended to the
    new one right after, so their lines survive the replacement. Returns all that was written.
    `unchanged`, when given, is asked last before the rename: False (a writer that takes no lock,
    Jan, rewrote the file since it was read) raises `Changed` and leaves the file as it is. The
    window left is the check's own read and the rename (an in-place write landing there goes to
    the file the rename replaces), not the read, the edit, the write and the fsync."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    parts = [data]
    try:
        write_all(fd, data)
        if durable:
            os.fsync(fd)
        if follow is not None:  # what is appended meanwhile, until none comes
            while more := _followed(follow, parts):
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
    if follow is not None:
        # A program that takes no lock may have opened the old file just before the rename and
        # not written yet (descheduled between its open and its write): give it a moment, then
        # take what it wrote there. (Waiting only when one had appended during the rewrite
        # still lost a line in each 30 s race of a lock-less writer against API modifies and
        # deletes; ~10 ms on a modify or a delete, which wait for their fsyncs anyway.)
        time.sleep(FOLLOW_GRACE)
    # After the rename, waiting again only if more came: an unfinished line the loop above
    # waited for in vain is no write in progress.
    if follow is not None and (late := _followed(follow, parts, wait=False)):
        late += _followed(follow, [late])
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            write_all(fd, late)
            parts.append(late)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    if durable:
        fsync_dir(path.parent)
    return b"".join(parts) if len(parts) > 1 else data


def _followed(follow: Callable[[], bytes], parts: list[bytes], wait: bool = True) -> bytes:
    """What `follow` has now, and when the copy (`parts`, then that) ends inside a line, the rest
    of it: another writer's `write(2)` becomes visible a page at a time, so a read may take the
    first part of one still in progress, whose rest would then land in the replaced file (lost)
    and the line be cut short in the new one. Waits up to TORN_WAIT for the newline (`wait`), as
    an append does (`files._tail`); a line left unfinished longer (its writer died, or writes it in
    parts) is copied as it stands."""
    more = follow()
    last = more or next((p for p in reversed(parts) if p), b"\n")
    if not wait or last.endswith(b"\n"):
        return more
    deadline = time.monotonic() + TORN_WAIT
    while time.monotonic() < deadline:
        time.sleep(TORN_POLL)
        more += follow()
        if more.endswith(b"\n"):
            break
    return more


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
