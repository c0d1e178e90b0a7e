"""Start-up check of the data folder: the server writes in it (new threads, appends, its event
journal under `.threadline/`), so one it cannot write stops it at once with one line that says
why and what to do, instead of a traceback from deep in the start-up (or, with workers, a loop of
workers that die)."""

from __future__ import annotations

import os
from pathlib import Path

from .events.journal import journal_path


def unusable(data_dir: Path) -> str | None:
    """Why the server cannot use `data_dir`, as one line for the user; None when it can."""
    for folder in (data_dir / "threads", journal_path(data_dir).parent):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write-test-{os.getpid()}"
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
            probe.unlink()
        except OSError as exc:
            where = folder if folder.is_dir() else folder.parent
            return (f"data folder {data_dir} cannot be written: {exc.strerror} ({where}). "
                    + _advice(where))
    journal = journal_path(data_dir)
    if (journal.exists() or journal.is_symlink()) and not journal.is_file():
        return (f"{journal} is not a regular file: remove it (the event journal is made again "
                "from the threads' files).")
    return None


def _advice(path: Path) -> str:
    uid = os.getuid()
    for candidate in (path, *path.parents):
        try:
            st = candidate.stat()
        except OSError:
            continue
        if st.st_uid != uid:
            return (f"It belongs to uid {st.st_uid} and this process runs as uid {uid}: run as "
                    f"its owner (docker run --user {st.st_uid}:{st.st_gid}) or make it "
                    f"writable for uid {uid}.")
        break
    return f"Make it writable for uid {uid} (and not mounted read-only)."
