"""An external writer that follows the documented contract, standalone (it imports nothing of
Threadline): for each line, take the thread's flock, start on a fresh line, write the whole line
with one write(2), release.

    python tests/appender.py FOLDER COUNT PREFIX [--fsync] [--pause SECONDS]

Appends COUNT canonical message lines with ids `PREFIX0`, `PREFIX1`, ... and prints, as JSON, the
inode of the file each line went to (to show that rewrites happened while it appended).
`--pause` waits that long after each line, to spread the lines over a race's whole length.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path


def line(message_id: str, thread_id: str) -> bytes:
    return json.dumps({
        "id": message_id, "object": "thread.message", "created_at": int(time.time()),
        "thread_id": thread_id, "status": "completed", "incomplete_details": None,
        "completed_at": None, "incomplete_at": None, "role": "assistant",
        "content": [{"type": "text", "text": {"value": f"external {message_id}",
                                              "annotations": []}}],
        "assistant_id": None, "run_id": None, "attachments": [], "metadata": {},
    }, separators=(",", ":")).encode()


def append(folder: Path, data: bytes, durable: bool) -> int:
    lock = os.open(folder / ".threadline.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fd = os.open(folder / "messages.jsonl", os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            st = os.fstat(fd)
            if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
                data = b"\n" + data
            assert os.write(fd, data) == len(data)
            if durable:
                os.fdatasync(fd)
            return st.st_ino
        finally:
            os.close(fd)
    finally:
        os.close(lock)  # drops the flock


def main() -> None:
    folder, count, prefix = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    durable = "--fsync" in sys.argv
    pause = float(sys.argv[sys.argv.index("--pause") + 1]) if "--pause" in sys.argv else 0.0
    inodes = []
    for i in range(count):
        inodes.append(append(folder, line(f"{prefix}{i}", folder.name) + b"\n", durable))
        time.sleep(pause)
    print(json.dumps(inodes))


if __name__ == "__main__":
    main()
