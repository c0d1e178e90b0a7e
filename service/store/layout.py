"""Jan's data layout: `<data-dir>/threads/<thread_id>/{thread.json,messages.jsonl}`.

A path is only ever built from a thread id that passed `ids.is_thread_id`, so nothing outside the
threads directory can be named through the API.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..ids import is_thread_id

THREAD_JSON = "thread.json"
MESSAGES = "messages.jsonl"
LOCK = ".threadline.lock"


class UnsafeThreadId(ValueError):
    pass


def thread_dir(threads_dir: Path, thread_id: str) -> Path:
    if not is_thread_id(thread_id):
        raise UnsafeThreadId(thread_id)
    return threads_dir / thread_id


def thread_id_of(threads_dir: Path, path: Path) -> str | None:
    """The thread a path inside the threads directory belongs to, if any."""
    try:
        rel = path.relative_to(threads_dir)
    except ValueError:
        return None
    if not rel.parts or not is_thread_id(rel.parts[0]):
        return None
    return rel.parts[0]


def list_thread_ids(threads_dir: Path) -> list[str]:
    """The thread folders in the threads directory (names that are no thread id are not)."""
    try:
        names = os.listdir(threads_dir)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if is_thread_id(n) and (threads_dir / n).is_dir())
