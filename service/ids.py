"""Identifiers: new OpenAI-style ids, and the check that makes a thread id a safe folder name."""

from __future__ import annotations

import os
import random
import re
import time

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
THREAD_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


# Each random byte picks a character (byte % 62): 5.9 bits a character, so 24 characters carry
# over 140 bits, with one bytes.translate instead of a Python loop per character. The bytes come
# from a generator seeded by the OS, not a getrandom(2) call per id (a measurable share of a
# create); ids must be unique, not secret. Re-seeded in forked workers, which would otherwise
# draw the same sequence.
_BYTE_TO_CHAR = bytes(ord(_ALPHABET[b % 62]) for b in range(256))
_rng = random.Random(os.urandom(32))


def _reseed() -> None:
    _rng.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)


def _random62(length: int = 24) -> str:
    return _rng.randbytes(length).translate(_BYTE_TO_CHAR).decode()


_last_ms = 0


def _clock62(width: int = 8) -> str:
    """Milliseconds since the epoch, strictly increasing in this process, as fixed-width base 62
    (the alphabet is in ASCII order, so these strings sort like the numbers)."""
    global _last_ms
    _last_ms = max(time.time_ns() // 1_000_000, _last_ms + 1)
    n, chars = _last_ms, []
    for _ in range(width):
        n, r = divmod(n, 62)
        chars.append(_ALPHABET[r])
    return "".join(reversed(chars))


def new_message_id() -> str:
    return "msg_" + _random62()


def new_thread_id() -> str:
    """Time-ordered: the thread list sorts by (created_at, id), and created_at has whole seconds,
    so threads created within one second still list in creation order."""
    return "thread_" + _clock62() + _random62(16)


def is_thread_id(value: str) -> bool:
    """True if `value` may name a thread folder: no separators, dots-only names, NULs or overlong
    names can pass, so a path built from it stays inside the threads directory."""
    return THREAD_ID_RE.fullmatch(value) is not None
