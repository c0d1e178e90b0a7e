"""thread.json is also rewritten by Jan, which takes no lock: a replacement Threadline prepared from
an older read must not land over Jan's newer file (`write_atomic`'s `unchanged`, `holds`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.store.files import Changed, holds, read_file, write_atomic
from service.store.threadjson import pin_created


def test_a_file_rewritten_since_it_was_read_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "thread.json"
    path.write_bytes(b'{"title": "old"}\n')
    raw = read_file(path)
    path.write_bytes(b'{"title": "renamed in Jan"}\n')  # Jan, in place, between read and write
    with pytest.raises(Changed):
        write_atomic(path, b'{"title": "old", "metadata": {}}\n', False, unchanged=holds(path, raw))
    assert path.read_bytes() == b'{"title": "renamed in Jan"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thread.json"]  # no temp file left


def test_a_file_as_it_was_read_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "thread.json"
    path.write_bytes(b'{"title": "old"}\n')
    raw = read_file(path)
    write_atomic(path, b'{"title": "new"}\n', False, unchanged=holds(path, raw))
    assert path.read_bytes() == b'{"title": "new"}\n'


def test_holds_tells_a_file_that_appeared_or_vanished(tmp_path: Path) -> None:
    path = tmp_path / "thread.json"
    absent = holds(path, None)
    assert absent()
    path.write_bytes(b"{}\n")
    assert not absent()
    present = holds(path, b"{}\n")
    assert present()
    path.unlink()
    assert not present()


def test_pin_created_writes_a_time_only_where_none_is_given(tmp_path: Path) -> None:
    timeless = tmp_path / "a"
    timeless.mkdir()
    (timeless / "thread.json").write_bytes(b'{"id": "a", "title": "t"}\n')
    pin_created(timeless, 1717666232, durable=False)
    assert b'"created_at": 1717666232' in (timeless / "thread.json").read_bytes()
    assert b'"title": "t"' in (timeless / "thread.json").read_bytes()
    dated = tmp_path / "b"
    dated.mkdir()
    (dated / "thread.json").write_bytes(b'{"id": "b", "created": 1717666000000}\n')
    pin_created(dated, 1717666232, durable=False)
    assert (dated / "thread.json").read_bytes() == b'{"id": "b", "created": 1717666000000}\n'
