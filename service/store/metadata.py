"""Metadata as stored (any JSON values: Jan keeps objects, booleans and numbers there) and as
served (strings, OpenAI's shape): values that are not strings are served as their JSON text, and
a modify's strings go back to the file typed where the stored value was (`metadata_to_store`).
"""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> str:
    """A JSON value kept as text, as `json.dumps` writes it. Total like everything here: a value
    nested past what the recursion budget left at this stack depth allows becomes ""."""
    kind = value.__class__
    if kind is int or (kind is float and value - value == 0):  # finite: json.dumps is repr
        return repr(value)
    try:
        return json.dumps(value)
    except RecursionError:
        return ""


def metadata(value: Any) -> dict[str, str]:
    if not value or value.__class__ is not dict:
        return {}
    return {k: v if v.__class__ is str else dumps(v) for k, v in value.items()}


def _json_kind(value: Any) -> str:
    """The JSON type of a decoded value (a bool is no number here)."""
    kind: str = "number" if value.__class__ in (int, float) else value.__class__.__name__
    return kind


def _as_stored_kind(old: Any, value: str) -> Any:
    """`value` (a metadata string sent by a client) as a value of `old`'s JSON type, when it is
    exactly the text such a value is served as (so the client reads back what it sent: `1.50`
    or `1e400` stay strings); else `value` itself."""
    try:
        parsed = json.loads(value, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return value
    if _json_kind(parsed) != _json_kind(old) or dumps(parsed) != value:
        return value
    return parsed


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: no JSON (thread.json would no longer be JSON)


def metadata_to_store(new: dict[str, str], stored: Any) -> dict[str, Any]:
    """Metadata sent in a modify, as it goes back to the file. A value Jan keeps as a boolean, a
    number or an object (served as its JSON text) stays of that type when the client sends back
    that type's JSON text as it is served, changed or not: reading, changing one key and writing
    all back does not turn Jan's objects into strings, and `"is_favorite": "false"` sent for
    Jan's `true` stores `false` (as the string "false", Jan would read it as true). Any other
    text is stored as the string it is, so what a client reads back is always what it sent."""
    if not stored or stored.__class__ is not dict:
        return new
    out: dict[str, Any] = {}
    for key, value in new.items():
        old = stored.get(key, value)
        if old.__class__ is str:
            out[key] = value
        elif dumps(old) == value:
            out[key] = old
        else:  # a null changed is a string: there is no other value of its type
            out[key] = value if old is None else _as_stored_kind(old, value)
    return out
