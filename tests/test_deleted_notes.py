"""store/deleted.py: the thread folder's note of where deleted messages stood stays bounded and
readable whatever else is in it."""

from __future__ import annotations

from pathlib import Path

from service.store import deleted


def test_the_note_keeps_the_newest_records_and_stays_bounded(tmp_path: Path) -> None:
    for i in range(3 * deleted.KEEP):
        deleted.record(tmp_path, f"msg_{i:06}", f"msg_{i - 1:06}" if i else None)
    noted = deleted.records(tmp_path)
    lines = [x for x in (tmp_path / deleted.NAME).read_bytes().split(b"\n") if x]
    assert deleted.KEEP <= len(lines) <= 2 * deleted.KEEP + 1
    assert noted[f"msg_{3 * deleted.KEEP - 1:06}"] == f"msg_{3 * deleted.KEEP - 2:06}"
    assert "msg_000000" not in noted  # trimmed away


def test_odd_ids_torn_lines_and_a_missing_file_are_fine(tmp_path: Path) -> None:
    assert deleted.records(tmp_path) == {}
    deleted.record(tmp_path, 'a\\tb\n"c"', None)
    with open(tmp_path / deleted.NAME, "ab") as f:
        f.write(b'\n["torn", "li')  # a process died mid-write: a record's start
    deleted.record(tmp_path, "after", 'a\\tb\n"c"')
    assert deleted.records(tmp_path) == {'a\\tb\n"c"': None, "after": 'a\\tb\n"c"'}
