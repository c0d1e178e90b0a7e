"""Builders for data folders that look like the Jan app's, in the shapes its versions wrote."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_thread(data_dir: Path, thread_id: str, thread: dict[str, Any] | None,
                 messages: Sequence[dict[str, Any] | str | bytes], *, pretty: bool = True
                 ) -> Path:
    """A thread folder: thread.json as Jan writes it (pretty) and one line per message; a str or
    bytes item is written as the raw line (for corrupt lines)."""
    folder = data_dir / "threads" / thread_id
    folder.mkdir(parents=True, exist_ok=True)
    if thread is not None:
        (folder / "thread.json").write_text(json.dumps(thread, indent=2 if pretty else None))
    lines = []
    for m in messages:
        if isinstance(m, dict):
            lines.append(json.dumps(m).encode())
        else:
            lines.append(m.encode() if isinstance(m, str) else m)
    (folder / "messages.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    return folder


def jan_thread(thread_id: str, title: str = "New Thread", created_ms: int = 1717666232000
               ) -> dict[str, Any]:
    """thread.json as Jan 0.5 writes it: title, assistants, created/updated in ms."""
    return {
        "id": thread_id,
        "object": "thread",
        "title": title,
        "assistants": [{"assistant_id": "jan", "assistant_name": "Jan", "model": {
            "id": "llama3.2-3b-instruct", "settings": {}, "parameters": {},
            "engine": "llama-cpp"}}],
        "created": created_ms,
        "updated": created_ms + 1000,
        "metadata": {"lastMessage": "hello"},
    }


def jan_message(message_id: str, thread_id: str, text: str, role: str = "user",
                created_ms: int = 1717666240000, status: str = "ready") -> dict[str, Any]:
    """A message line as Jan 0.5 writes it: ULID id, ms timestamps, status `ready`."""
    return {
        "id": message_id,
        "thread_id": thread_id,
        "type": "Thread",
        "role": role,
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
        "status": status,
        "created": created_ms,
        "updated": created_ms,
        "object": "thread.message",
    }


# --- the other shapes Jan has written over its versions ------------------------------------------

ULID = "01J0A8S7Y3Q6X2M4N5P6R7T8V9"
UUID = "3f2b8c9e-4d1a-4b7e-9c2f-1a2b3c4d5e6f"


def jan06_message(message_id: str, thread_id: str, text: str, *, role: str = "assistant",
                  created_ms: int = 1746000000123) -> dict[str, Any]:
    """A line as the Tauri-based Jan (0.6) writes it: `created_at`/`completed_at` in ms,
    `status` `ready`, and metadata whose values are objects and numbers, not strings."""
    return {
        "id": message_id,
        "object": "thread.message",
        "thread_id": thread_id,
        "assistant_id": "jan",
        "role": role,
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
        "status": "ready",
        "created_at": created_ms,
        "completed_at": created_ms + 2500,
        "metadata": {"tokenSpeed": {"tokenSpeed": 23.4, "tokenCount": 118},
                     "assistant": {"id": "jan", "name": "Jan", "avatar": "👋"}, "n": 3},
    }


def jan06_thread(thread_id: str, title: str = "Recipes") -> dict[str, Any]:
    """thread.json as Jan 0.6 writes it: ms timestamps under `created`/`updated`, `title`, an
    `assistants` list, a non-string metadata value, no `created_at`."""
    return {
        "id": thread_id,
        "object": "thread",
        "title": title,
        "assistants": [{"id": "jan", "name": "Jan", "instructions": "", "model": {"id": "qwen3"}}],
        "created": 1746000000000,
        "updated": 1746000099000,
        "metadata": {"is_favorite": False, "order": 2},
    }


def openai_message(message_id: str, thread_id: str, text: str, created_at: float) -> dict[str, Any]:
    """A line an OpenAI export or a script wrote: seconds (maybe fractional), OpenAI statuses."""
    return {
        "id": message_id, "object": "thread.message", "created_at": created_at,
        "thread_id": thread_id, "status": "completed", "role": "user",
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
        "assistant_id": None, "run_id": None, "attachments": [], "metadata": {},
    }
