"""Rewriting `messages.jsonl` to modify or delete one message, keeping every other byte.

Runs in a worker thread under the thread lock. Lines other than the target (corrupt ones, a torn
tail) are copied byte for byte, but for blank lines, which are dropped: they hold nothing, and the
Jan app's reader (0.6) fails on one and shows the whole thread empty. A torn tail left long ago is
closed by a newline, as an append closes it. The result replaces the file atomically.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from . import deleted
from .files import NotAFile, open_file, read_rest, thread_locked
from .layout import MESSAGES
from .lines import scan
from .replace import Follower, remove_stale_temps, write_atomic

log = logging.getLogger(__name__)

# edit(old_line) -> new line bytes (no newline), or None to delete the line
Edit = Callable[[bytes], bytes | None]

_BLANKS = rb"(?:[ \t\r\x0b\x0c]*\n)+"  # blank lines (what bytes.strip() leaves empty), each ended
_LEADING_BLANKS = re.compile(_BLANKS)
_INNER_BLANKS = re.compile(rb"\n" + _BLANKS)


def _without_blank_lines(part: bytes) -> bytes:
    """`part` of the file (from the start of a line) without its blank lines."""
    if (m := _LEADING_BLANKS.match(part)) is not None:
        part = part[m.end():]
    return _INNER_BLANKS.sub(b"\n", part) if _INNER_BLANKS.search(part) else part


class Rewritten:
    __slots__ = ("data", "found", "stat")

    def __init__(self, data: bytes, found: bool, stat: os.stat_result | None = None) -> None:
        self.data = data
        self.found = found
        self.stat = stat  # the new file, taken while still holding the lock


def _note_deleted(folder: Path, message_id: str, before: list[str]) -> None:
    """Record where the message stood (store/deleted.py), before the rewrite replaces the file;
    a failure leaves the delete to go on without the note."""
    try:
        if deleted.record(folder, message_id, before):
            deleted.trim(folder)
    except (OSError, NotAFile):
        log.warning("could not note the deletion of %s in %s", message_id, folder, exc_info=True)


def rewrite_message(folder: Path, message_id: str, edit: Edit, durable: bool,
                    every: bool = False, noted: list[str] | None = None) -> Rewritten:
    """Apply `edit` to the last line whose id is `message_id` (the one an id names when a damaged
    file repeats it), or with `every` to each such line (a delete: an older copy must not come
    back as the message); the file is left untouched when no line has it. With `noted` (the
    ids listed before it), a delete is noted (store/deleted.py) before the new file replaces
    the old. Returns the new content so the caller can re-index without reading it again."""
    path = folder / MESSAGES
    with thread_locked(folder):
        try:
            # Not through a symbolic link either: the rewrite would copy the file it names into
            # the folder (a 409, as for an append).
            fd = open_file(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return Rewritten(b"", False)
        except NotAFile as exc:
            if exc.errno == errno.ELOOP:
                raise
            return Rewritten(b"", False)  # no messages (a directory here holds none)
        try:
            old = read_rest(fd)
            lines = [(offset, length) for offset, length, mid, _run, _crc in scan(old)
                     if mid == message_id]
            if not lines:
                return Rewritten(old, False)
            out: list[bytes] = []
            pos = 0
            kept = False
            for offset, length in lines if every else lines[-1:]:
                out.append(_without_blank_lines(old[pos:offset]))
                new_line = edit(old[offset:offset + length])
                if new_line is not None:
                    kept = True
                    out.append(new_line + b"\n")
                pos = offset + length + 1
            # A writer that does not take the lock (the Jan app) may have appended meanwhile,
            # and may go on until the rename: the old file is followed (through `fd`, which
            # stays on it) until then, and just after.
            follow = Follower(fd)
            out.append(_without_blank_lines(old[pos:] + follow.read()))
            if out[-1] and not out[-1].endswith(b"\n") and not follow.recent():
                # A torn tail left long ago (its writer died mid-line) is closed, as an append
                # would close it: copied open, the new file's fresh mtime would have the next
                # append wait for its newline.
                out[-1] += b"\n"
            remove_stale_temps(folder)  # left by a process that died mid-rewrite
            if noted is not None and not kept:
                _note_deleted(folder, message_id, noted)
            data = write_atomic(path, b"".join(out), durable, follow=follow)
        finally:
            os.close(fd)
        stat = os.stat(path)
    return Rewritten(data, True, stat)
