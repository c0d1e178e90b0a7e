"""thread.json as Threadline writes it: pretty-printed like Jan's, unknown fields kept."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from . import normalize
from .files import NotAFile, read_file, thread_locked
from .layout import THREAD_JSON
from .lines import decode_object_exact
from .replace import Changed, holds, write_atomic


def thread_json_bytes(obj: dict[str, Any]) -> bytes:
    # Jan writes thread.json pretty-printed; so do we, keeping its unknown fields.
    return json.dumps(obj, indent=2, ensure_ascii=False).encode() + b"\n"


def pin_created(folder: Path, created_at: int, durable: bool) -> None:
    """Put `created_at` into a thread.json that gives no time (see `RepoBase._keep_date`); one
    that is missing or does not parse is left alone."""
    path = folder / THREAD_JSON
    with thread_locked(folder):
        try:
            raw = read_file(path)
        except (FileNotFoundError, NotAFile):
            return
        obj = decode_object_exact(raw)
        if obj is not None and not normalize.created_seconds(obj):
            obj["created_at"] = created_at
            with contextlib.suppress(Changed):  # Jan wrote it meanwhile: its version stands
                write_atomic(path, thread_json_bytes(obj), durable, unchanged=holds(path, raw))
