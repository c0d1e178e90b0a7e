"""Blocking file primitives: opening a thread's files, reads, writes, fsync, the thread lock
(appends: store/append.py; atomic replacement of a file: store/replace.py).

Called from a worker thread (never on the event loop), except `pread`, which the read paths use
for small reads of bytes the page cache holds.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from .layout import LOCK


class NotAFile(OSError):
    """A thread's file is something else: a directory, a FIFO, a device."""


def open_file(path: Path, flags: int, mode: int = 0o644) -> int:
    """`os.open` for a thread's own files, refusing anything but a regular file: a FIFO named
    messages.jsonl would block an open (or a read) for ever, a directory fail later and oddly.
    With O_NONBLOCK the open of a FIFO returns at once; a regular file does not heed it."""
    try:
        fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except IsADirectoryError:  # opened for writing
        raise NotAFile(errno.EISDIR, "not a regular file", str(path)) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symbolic link that leads back to itself
            raise NotAFile(errno.ELOOP, "not a regular file", str(path)) from None
        raise
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    if not regular:
        os.close(fd)
        raise NotAFile(errno.EINVAL, "not a regular file", str(path))
    return fd


def read_rest(fd: int) -> bytes:
    """Everything from the descriptor's position to the end of its file."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def read_file(path: Path) -> bytes:
    """A whole (small) file, as `Path.read_bytes` but through `open_file`."""
    fd = open_file(path, os.O_RDONLY)
    try:
        return read_rest(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def thread_locked(folder: Path) -> Iterator[None]:
    """The exclusive cross-process lock every writer of a thread holds (flock on a hidden file,
    so the Jan app and other readers see nothing new)."""
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def pread(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) == length:
        return data
    parts = [data]
    got = len(data)
    while got < length:
        chunk = os.pread(fd, length - got, offset + got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def write_all(fd: int, data: bytes) -> None:
    """Append `data` (fd opened with O_APPEND). If a write fails part way (disk full, I/O error),
    the part already written is taken back, so no torn line is left behind, unless another
    writer has appended after it meanwhile (then cutting would take its bytes too)."""
    view = memoryview(data)
    first = -1  # where our bytes begin, once some are written
    try:
        while view:
            written = os.write(fd, view)
            if first < 0:
                first = os.lseek(fd, 0, os.SEEK_CUR) - written
            view = view[written:]
    except OSError:
        if first >= 0:
            with contextlib.suppress(OSError):
                if os.fstat(fd).st_size == os.lseek(fd, 0, os.SEEK_CUR):
                    os.ftruncate(fd, first)
        raise


STALE_SECONDS = 300.0


def remove_leftovers(threads_dir: Path) -> list[str]:
    """Remove what a crash left behind in the threads directory: `.new-*` folders of creates that
    were never acknowledged and `.deleted-*` folders of deletes already applied. Only old ones:
    another process may be creating or deleting a thread right now."""
    removed: list[str] = []
    try:
        names = os.listdir(threads_dir)
    except FileNotFoundError:
        return removed
    now = time.time()
    for name in names:
        if not name.startswith((".new-", ".deleted-")):
            continue
        path = threads_dir / name
        try:
            if now - path.lstat().st_mtime < STALE_SECONDS:
                continue
        except FileNotFoundError:
            continue
        remove_folder(path)
        removed.append(name)
    return removed


def remove_folder(path: Path) -> None:
    """Remove a thread folder moved out of the way; one that is a symbolic link (a folder kept
    elsewhere, linked in) loses the link only: what it leads to is not the data folder's."""
    if path.is_symlink():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)
