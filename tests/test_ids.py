"""New ids: unique, URL-safe, valid folder names, and different in forked workers."""

from __future__ import annotations

import os

from service import ids


def test_new_ids_are_unique_and_safe() -> None:
    made = {ids.new_message_id() for _ in range(50_000)}
    assert len(made) == 50_000
    assert all(m.startswith("msg_") and len(m) == 28 and m[4:].isalnum() for m in made)
    threads = [ids.new_thread_id() for _ in range(1000)]
    assert all(ids.is_thread_id(t) for t in threads)
    assert threads == sorted(threads)  # time-ordered: same-second threads list in order


def test_a_forked_worker_draws_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the next id it makes
        os.write(write, ids.new_message_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    assert child != ids.new_message_id()
