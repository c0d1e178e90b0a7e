"""The operations the API offers, over the store (files) and the index (memory).

Writes go to the files first (under the thread lock, fsynced per policy) and reach the index through
the same sync path the watcher uses, so each change is indexed and published once. Reads come from
the index and one read of the file. Knows nothing of HTTP: it takes decoded requests and raises the
typed errors of `errors`.
"""

from .base import list_envelope
from .messages import MessageOps
from .threads import ThreadOps

__all__ = ["Repository", "list_envelope"]


class Repository(ThreadOps, MessageOps):
    """Every operation; one per app."""
