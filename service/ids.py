"""Identifiers: new OpenAI-style ids, and the check that makes a thread id a safe folder name."""

from __future__ import annotations

import os
import re

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
THREAD_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _random62(length: int = 24) -> str:
    n = int.from_bytes(os.urandom(18), "big")  # 144 bits > 24 base-62 digits (142.9 bits)
    chars = []
    for _ in range(length):
        n, r = divmod(n, 62)
        chars.append(_ALPHABET[r])
    return "".join(chars)


def new_message_id() -> str:
    return "msg_" + _random62()


def new_thread_id() -> str:
    return "thread_" + _random62()


def is_thread_id(value: str) -> bool:
    """True if `value` may name a thread folder: no separators, dots-only names, NULs or overlong
    names can pass, so a path built from it stays inside the threads directory."""
    return THREAD_ID_RE.fullmatch(value) is not None
