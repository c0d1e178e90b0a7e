"""The start-up index build: `extend` and `index_file` index exactly what the per-line reader
(`lines.scan`) says, however lines are grouped and reads are cut; and the id table, built late,
finds what a table built at once would.

`scan` is the plain definition (one parse and one CRC per line, in a Python loop); the build takes
the lines in groups with bulk operations and a fall-back for groups that hold anything odd, so the
two are compared on every kind of line: corrupt, blank, ids that are numbers, empty, objects,
non-ASCII or repeated, run ids, lines nested past the parser's depth, a half-written last line.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.index import build, idtable
from service.index.catalog import Tail
from service.index.idtable import IdTable
from service.index.messages import MessageIndex
from service.store.lines import scan
from tests.test_fuzz import budget, files

ODD_LINES = [
    b'{"id":"msg_1","object":"thread.message","run_id":null}',
    b"",
    b"   \t",
    b"\x0b",
    b'{"id":"msg_2","run_id":"run_a"}',
    b'{"id":"trunc',
    b"[1,2]",
    b'{"id":"a"} {"id":"b"}',
    b'  {"id":"padded"}  ',
    b'{"id":7}',
    b'{"id":true}',
    b'{"id":1.5}',
    b'{"id":""}',
    b'{"id":null}',
    b'{"id":{"x":1}}',
    b'{"id":[1]}',
    b'{"no_id":1}',
    b'{"id":"msg_1","edited":true}',  # the same id again: the later line wins a lookup
    '{"id":"ünï","run_id":""}'.encode(),
    b'{"id":"\\ud800x"}',
    b'{"id":"\xff\xfe"}',
    b'{"id":"ok","bad_utf8":"\xff"}',
    b'{"id":1e400}',
    b'{"id":"deep","d":' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"id":"msg_3","run_id":5}',
    b'{"id":"msg_4","run_id":"run_b","id":"msg_4b"}',
]


def reference(data: bytes, base: int) -> tuple[list[tuple[int, int, str, int]], dict[int, str],
                                               list[tuple[int, int]], tuple[int, int, int] | None]:
    """What the index must hold for `data`: messages (start, length, id, crc), run ids by
    position, corrupt lines, and the last non-blank line (start, length, crc)."""
    found: list[tuple[int, int, str, int]] = []
    run_ids: dict[int, str] = {}
    corrupt: list[tuple[int, int]] = []
    last = None
    for offset, length, mid, run_id, crc in scan(data, base):
        last = (offset, length, crc)
        if mid is None:
            corrupt.append((offset, length))
            continue
        if run_id is not None:
            run_ids[len(found)] = run_id
        found.append((offset, length, mid, crc))
    return found, run_ids, corrupt, last


def held(index: MessageIndex) -> tuple[list[tuple[int, int, str, int]], dict[int, str],
                                       list[tuple[int, int]]]:
    return ([(index.starts[s], index.lengths[s], index.id_at(s), index.crcs[s])
             for s in range(len(index))], dict(index.run_ids), list(index.corrupt))


def check(index: MessageIndex, tail: Tail, data: bytes, base: int) -> None:
    found, run_ids, corrupt, last = reference(data, base)
    assert held(index) == (found, run_ids, corrupt)
    assert bytes(index.canon) == bytes(len(found))
    if last is not None:
        assert (tail.start, tail.length, tail.crc) == last
    assert tail.end == (base + data.rfind(b"\n") + 1 if b"\n" in data else 0)
    for slot, (_, _, mid, _) in enumerate(found):  # the last line with an id is the one found
        assert index.find(mid) == max(s for s, m in enumerate(found) if m[2] == mid) >= slot
        assert index.id_is(slot, mid) and not index.id_is(slot, mid + "x")
        # The last character off by its lowest bit: never across a UTF-8 length boundary, so
        # the same number of bytes, one of them different.
        other = mid[:-1] + chr(ord(mid[-1]) ^ 1)
        assert len(other.encode(errors="surrogatepass")) == len(mid.encode(errors="surrogatepass"))
        assert not index.id_is(slot, mid[:-1]) and not index.id_is(slot, other)
    assert index.find("no such id") == -1


@pytest.mark.parametrize("group", [1, 40, 300, 1 << 18])
def test_extend_indexes_what_the_line_reader_reads(monkeypatch: pytest.MonkeyPatch,
                                                   group: int) -> None:
    monkeypatch.setattr(build, "GROUP", group)
    data = b"\n".join(ODD_LINES * 3) + b'\n{"id":"half-written'
    index, tail = MessageIndex(), Tail()
    build.extend(index, data, 1000, tail)
    check(index, tail, data, 1000)


def test_extend_reports_the_messages_it_adds_in_file_order() -> None:
    data = b"\n".join(ODD_LINES) + b"\n"
    index, tail = MessageIndex(), Tail()
    created: list[tuple[int, int, str]] = []
    build.extend(index, data, 5, tail, created)
    assert created == [(start, length, mid) for start, length, mid, _ in reference(data, 5)[0]]


def test_extend_stops_at_stop_and_appends_after_what_is_indexed() -> None:
    first = b'{"id":"a"}\n{"id":"b"}\n\n  \n'
    second = b'{"id":"c","run_id":"r"}\nnot json\n{"id":"a"}\n'
    index, tail = MessageIndex(), Tail()
    build.extend(index, first + b'{"id":"x"}\n', 0, tail, stop=len(first))
    assert tail.end == len(first) and (tail.start, tail.length) == (11, 10)  # blank lines skipped
    index.build_table()  # later appends go into a built table
    build.extend(index, second, len(first), tail)
    check(index, tail, first + second, 0)
    assert index.find("a") == 3 and index.run_ids == {2: "r"}


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_index_file_cuts_reads_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        chunk: int) -> None:
    monkeypatch.setattr(build, "CHUNK", chunk)
    monkeypatch.setattr(build, "GROUP", 50)
    long_line = json.dumps({"id": "long", "text": "x" * 5000}).encode()  # longer than the reads
    data = b"\n".join([*ODD_LINES, long_line, *ODD_LINES]) + b'\n{"id":"half'
    path = tmp_path / "messages.jsonl"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        index, tail = build.index_file(fd)
    finally:
        os.close(fd)
    assert not index.has_table  # built later, by a lookup or after start-up
    check(index, tail, data, 0)


def clear_of_the_depth_limit(data: bytes) -> bytes:
    """Lines nested near the parser's depth limit parse or not depending on how deep the caller's
    stack is (see lines.MAX_DEPTH), and the two readers are called from different depths: make
    every line with that many brackets nest far past the limit, so both see the same."""
    return b"\n".join(line if line.count(b"[") + line.count(b"{") < 800 else b"[" * 5000
                      for line in data.split(b"\n"))


@budget(100)
@given(files.map(clear_of_the_depth_limit), st.sampled_from([1, 64, 1 << 18]),
       st.integers(min_value=0, max_value=10**12))
def test_extend_agrees_with_the_line_reader_on_anything(data: bytes, group: int, base: int
                                                        ) -> None:
    saved = build.GROUP
    build.GROUP = group
    try:
        index, tail = MessageIndex(), Tail()
        build.extend(index, data, base, tail)
    finally:
        build.GROUP = saved
    check(index, tail, data, base)


def ids_index(ids: list[str]) -> MessageIndex:
    index = MessageIndex()
    index.add_many(list(range(len(ids))), [1] * len(ids), ids, [0] * len(ids), {})
    return index


def test_a_lookup_among_the_newest_ids_builds_no_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idtable, "RECENT_IDS", 40)
    index = ids_index([f"m{i}" for i in range(100)] + ["m9"])
    assert index.find("m99") == 99 and index.find("m9") == 100  # the last line with the id
    assert not index.has_table
    assert index.find("9") == -1  # inside other ids only: not an id of its own
    assert index.has_table  # not among the newest: the table answers (and now exists)
    assert index.find("m1") == 1 and index.find("m9") == 100


def test_a_lookup_past_the_newest_ids_builds_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idtable, "RECENT_IDS", 40)
    index = ids_index([f"id{i}" for i in range(50)])
    index.reserve_table()
    room = index.nbytes()
    assert not index.has_table
    assert index.find("id3") == 3 and index.has_table
    assert index.nbytes() == room  # the table took the room set aside for it
    index.add(50, 1, "id3", None, 0)
    assert index.find("id3") == 50


def test_a_run_of_lookups_builds_the_table_after_a_few() -> None:
    index = ids_index([f"m{i}" for i in range(1000)])
    for i in range(idtable.RECENT_SEARCHES):
        assert index.find(f"m{999 - i}") == 999 - i
    assert not index.has_table
    assert index.find("m998") == 998 and index.has_table  # a loop over every id costs no scans


def test_appends_while_the_table_is_built_in_another_thread_are_found() -> None:
    index = ids_index([f"a{i}" for i in range(20_000)])
    builder = threading.Thread(target=index.build_table)
    builder.start()
    for i in range(3_000):  # some before the table is published, some after
        index.add_many([i], [1], [f"b{i}"], [0], {})
    builder.join()
    assert index.has_table
    assert all(index.find(f"b{i}") == 20_000 + i for i in range(3_000))
    assert all(index.find(f"a{i}") == i for i in range(0, 20_000, 97))


def test_a_lookup_while_another_thread_builds_the_table_does_not_wait_for_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idtable, "RECENT_IDS", 40)
    index = ids_index([f"m{i}" for i in range(1000)])
    with index.ids._building:  # another thread is building the table right now
        assert index.find("m3") == 3  # an old id: found by searching every id, not by waiting
        assert index.find("m") == -1 and index.find("nope") == -1
        assert not index.has_table
    assert index.find("m3") == 3 and index.has_table


def test_many_appends_while_the_table_is_built_grow_it_and_keep_every_id(
        monkeypatch: pytest.MonkeyPatch) -> None:
    index = ids_index([f"a{i}" for i in range(30)])
    started, appended = threading.Event(), threading.Event()
    enter = IdTable._enter

    def slow_enter(self: IdTable, *args: Any) -> None:  # the first fill waits for appends
        if not started.is_set():
            started.set()
            assert appended.wait(5)
        enter(self, *args)

    monkeypatch.setattr(IdTable, "_enter", slow_enter)
    builder = threading.Thread(target=index.build_table)
    builder.start()
    assert started.wait(5)
    index.add_many(list(range(500)), [1] * 500, [f"b{i}" for i in range(500)], [0] * 500, {})
    appended.set()
    builder.join()
    assert index.has_table
    assert all(index.find(f"a{i}") == i for i in range(30))
    assert all(index.find(f"b{i}") == 30 + i for i in range(500))


def test_the_tail_crc_is_the_crc_of_the_last_line() -> None:
    data = b'{"id":"a"}\n{"id":"b","x":1}\n'
    index, tail = MessageIndex(), Tail()
    build.extend(index, data, 0, tail)
    assert tail.crc == zlib.crc32(b'{"id":"b","x":1}') == index.crcs[1]
