"""`kill -9` under load: nothing acknowledged is ever lost, no file is ever left unreadable.

Each round runs 64 concurrent clients creating, modifying and deleting messages across a few
threads of a real server process, SIGKILLs it once a random number of operations has been
acknowledged, restarts it on the same folder and checks, for every message ever acknowledged:
an acknowledged create is served with exactly the acknowledged content, an acknowledged modify or
delete is applied, and an operation in flight at the kill is either fully applied or not at all.
Every line of every file must parse, except torn final lines (from the crash, or simulated: each
round appends half a line, as a writer dying mid-write leaves it), which are never served; the next
append closes such a line, so the new message starts on a fresh line.

The seed is random per run and reported with the counts (set CRASH_SEED to replay a run's choices;
the kill moment itself depends on timing).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openai.types.beta.threads import Message as SdkMessage

from tests.procs import JSON, ServerProcess, all_messages, canonical_line, parse_line, read_lines

CLIENTS = 64
THREADS = 4
ALPHABET = "abcdefghij KLMNOP 0123 \"\\\n\t é✓😀\u2028\x00{}[],:"


@dataclass(eq=False)
class Msg:
    """What a client knows of one message: the last served object it saw acknowledged (or the
    restarted server showed), and the operation it had in flight when the server died."""

    thread_id: str
    tag: str
    obj: dict[str, Any] | None = None
    deleted: bool = False
    pending: tuple[str, Any] | None = None

    @property
    def id(self) -> str | None:
        return None if self.obj is None else str(self.obj["id"])


@dataclass
class World:
    threads: list[str]
    msgs: dict[str, Msg] = field(default_factory=dict)  # by tag
    torn: set[bytes] = field(default_factory=set)  # torn tails (now or once) in the files
    errors: list[str] = field(default_factory=list)
    acks: int = 0
    kill_at: int = 0
    kill: asyncio.Event = field(default_factory=asyncio.Event)


def text_of(obj: dict[str, Any]) -> str:
    return str(obj["content"][0]["text"]["value"])


def tag_of(obj: dict[str, Any]) -> str:
    return text_of(obj).split(" ", 1)[0]


def content(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"value": text, "annotations": []}}]


def random_text(rng: random.Random, tag: str) -> str:
    return tag + " " + "".join(rng.choices(ALPHABET, k=rng.choice([0, 10, 200, 1500])))


class Client:
    """One of the concurrent clients: owns the messages it creates, so its operations on each
    message are sequential and their outcome is known."""

    def __init__(self, world: World, http: aiohttp.ClientSession, base: str, name: str,
                 rng: random.Random, owned: list[Msg]) -> None:
        self.world, self.http, self.base, self.name, self.rng = world, http, base, name, rng
        self.owned = owned

    def ack(self) -> None:
        self.world.acks += 1
        if self.world.acks >= self.world.kill_at:
            self.world.kill.set()

    async def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        async with self.http.request(method, self.base + path, json=body) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200:
                self.world.errors.append(f"{method} {path} -> {resp.status} {data}")
                raise aiohttp.ClientError("unexpected status")
            return data  # type: ignore[no-any-return]

    async def run(self) -> None:
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
            for i in range(100_000):
                live = [m for m in self.owned if m.obj is not None and not m.deleted]
                roll = self.rng.random()
                if roll < 0.55 or not live:
                    await self.create(f"{self.name}n{i}")
                elif roll < 0.85:
                    await self.modify(self.rng.choice(live), i)
                else:
                    await self.delete(self.rng.choice(live))

    async def create(self, tag: str) -> None:
        text = random_text(self.rng, tag)
        m = Msg(thread_id=self.rng.choice(self.world.threads), tag=tag, pending=("create", text))
        self.world.msgs[tag] = m
        self.owned.append(m)
        role = self.rng.choice(["user", "assistant"])
        obj = await self.call("POST", f"/v1/threads/{m.thread_id}/messages",
                              {"role": role, "content": text, "metadata": {"c": tag}})
        if text_of(obj) != text or obj["role"] != role:
            self.world.errors.append(f"create {tag} answered {obj}")
        m.obj, m.pending = obj, None
        self.ack()

    async def modify(self, m: Msg, i: int) -> None:
        text, meta = random_text(self.rng, m.tag), {"v": str(i), "by": self.name}
        m.pending = ("modify", (text, meta))
        obj = await self.call("POST", f"/v1/threads/{m.thread_id}/messages/{m.id}",
                              {"content": text, "metadata": meta})
        if text_of(obj) != text or obj["metadata"] != meta:
            self.world.errors.append(f"modify {m.tag} answered {obj}")
        m.obj, m.pending = obj, None
        self.ack()

    async def delete(self, m: Msg) -> None:
        m.pending = ("delete", None)
        obj = await self.call("DELETE", f"/v1/threads/{m.thread_id}/messages/{m.id}")
        if obj != {"id": m.id, "object": "thread.message.deleted", "deleted": True}:
            self.world.errors.append(f"delete {m.tag} answered {obj}")
        m.deleted, m.pending = True, None
        self.ack()


async def load_until_killed(world: World, server: ServerProcess, rnd: int, rng: random.Random
                            ) -> None:
    """Run the clients; SIGKILL the server once `kill_at` operations are acknowledged."""
    world.acks, world.kill = 0, asyncio.Event()
    world.kill_at = rng.randint(40, 400)
    owned: list[list[Msg]] = [[] for _ in range(CLIENTS)]
    for m in world.msgs.values():  # older messages get modified and deleted too
        if m.obj is not None and not m.deleted:
            owned[hash(m.tag) % CLIENTS].append(m)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout,
                                     headers=JSON) as http:
        clients = [Client(world, http, server.url, f"r{rnd}c{c}", random.Random(rng.random()),
                          owned[c]) for c in range(CLIENTS)]
        tasks = [asyncio.create_task(c.run()) for c in clients]
        killer = asyncio.create_task(world.kill.wait())
        try:  # a client stopping early (an error) ends the round too
            await asyncio.wait([killer, *tasks], timeout=60,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            killer.cancel()
            server.kill9()
            await asyncio.wait_for(asyncio.gather(*tasks), 60)


def tear_a_line(world: World, rnd: int, rng: random.Random, data_dir: Path) -> None:
    """Leave half a line at the end of one thread's file, as a writer dying mid-write would."""
    thread_id = rng.choice(world.threads)
    line = canonical_line(f"msg_torn_r{rnd}", thread_id, "never served")
    with (data_dir / "threads" / thread_id / "messages.jsonl").open("ab") as f:
        f.write(line[: rng.randint(20, len(line) - 2)])


def check_files(world: World, data_dir: Path, counts: Counter[str]) -> dict[str, bytes]:
    """Every whole line parses (or is a torn line closed by a later append); returns the torn
    tails found."""
    tails = {}
    for thread_id in world.threads:
        lines, tail = read_lines(data_dir / "threads" / thread_id / "messages.jsonl")
        ids: Counter[str] = Counter()
        for line in lines:
            obj = parse_line(line)
            if obj is not None:
                ids[obj["id"]] += 1
            elif line in world.torn:
                counts["closed_torn_lines"] += 1
            else:
                counts["unreadable"] += 1
                world.errors.append(f"unreadable line in {thread_id}: {line[:200]!r}")
        for mid, n in ids.items():
            if n > 1:
                world.errors.append(f"id {mid} on {n} lines of {thread_id}")
        if tail:
            counts["torn_tails"] += 1
            tails[thread_id] = tail
            world.torn.add(tail)
    return tails


def settle(world: World, served: dict[str, dict[str, Any]], counts: Counter[str]) -> None:
    """Compare what the restarted server serves with what was acknowledged; then take what it
    serves as the new truth for operations that were in flight."""
    for tag, m in list(world.msgs.items()):
        got = served.pop(tag, None)
        op = m.pending[0] if m.pending else None
        if op == "create":
            counts["in_flight"] += 1
            if got is None:
                del world.msgs[tag]
            elif text_of(got) != m.pending[1]:  # type: ignore[index]
                world.errors.append(f"in-flight create {tag} came back as {got}")
            else:
                m.obj, m.pending = got, None
            continue
        if m.deleted:
            counts["expected_absent"] += 1
            if got is not None:
                counts["lost"] += 1
                world.errors.append(f"acknowledged delete of {tag} undone: {got}")
            continue
        assert m.obj is not None
        counts["expected_present"] += 1
        if op == "delete" and got is None:
            counts["in_flight"] += 1
            m.deleted, m.pending = True, None
            continue
        if got is None:
            counts["lost"] += 1
            world.errors.append(f"acknowledged {tag} ({m.id}) is missing")
            continue
        if got == m.obj or (op == "modify" and got == {
                **m.obj, "content": content(m.pending[1][0]),  # type: ignore[index]
                "metadata": m.pending[1][1]}):  # type: ignore[index]
            counts["found"] += 1
            counts["in_flight"] += op is not None
            m.obj, m.pending = got, None
        else:
            counts["lost"] += 1
            world.errors.append(f"{tag}: acknowledged {m.obj}, served {got} (in flight: {op})")
    for tag, got in served.items():
        if not tag.startswith("probe"):
            world.errors.append(f"served a message nobody created: {got}")


async def verify(world: World, server: ServerProcess, rnd: int, counts: Counter[str]) -> None:
    tails = check_files(world, server.data_dir, counts)
    served: dict[str, dict[str, Any]] = {}
    async with aiohttp.ClientSession(headers=JSON) as http:
        for thread_id in world.threads:
            for obj in await all_messages(http, server.url, thread_id):
                SdkMessage.model_validate(obj, strict=True)
                if obj["id"].startswith("msg_torn"):
                    world.errors.append(f"a torn line was served: {obj}")
                served[tag_of(obj)] = obj
        settle(world, served, counts)
        # The next append after the crash starts on a fresh line, torn tail or not.
        for k, thread_id in enumerate(world.threads):
            tag = f"probe{rnd}t{k}"
            async with http.post(f"{server.url}/v1/threads/{thread_id}/messages",
                                 json={"role": "user", "content": tag}) as resp:
                assert resp.status == 200, await resp.text()
                probe = await resp.json()
            lines, tail = read_lines(server.data_dir / "threads" / thread_id / "messages.jsonl")
            assert tail == b"" and parse_line(lines[-1]) == probe, (thread_id, lines[-2:], tail)
            if thread_id in tails:
                assert lines[-2] == tails[thread_id], "the torn line was not closed as it was"
            # A rewrite after the crash keeps the closed torn line byte for byte and removes the
            # temp files a rewrite killed mid-way left behind.
            async with http.post(f"{server.url}/v1/threads/{thread_id}/messages/{probe['id']}",
                                 json={"metadata": {"probe": "modified"}}) as resp:
                assert resp.status == 200, await resp.text()
            folder = server.data_dir / "threads" / thread_id
            after, _ = read_lines(folder / "messages.jsonl")
            assert after[:-1] == lines[:-1] and parse_line(after[-1])["metadata"] == {  # type: ignore[index]
                "probe": "modified"}
            leftovers = sorted(p.name for p in folder.glob(".*.tmp"))
            if leftovers:
                world.errors.append(f"temp files left in {thread_id}: {leftovers}")
            counts["stale_temps_checked"] += 1


async def crash_loop(tmp_path: Path, rounds: int, record_property: Any) -> Counter[str]:
    seed = int(os.environ.get("CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    (data_dir / "threads").mkdir(parents=True)
    server = ServerProcess(data_dir, tmp_path / "proc")
    await server.start()
    async with aiohttp.ClientSession(headers=JSON) as http:
        threads = []
        for _ in range(THREADS):
            async with http.post(server.url + "/v1/threads", json={}) as resp:
                threads.append((await resp.json())["id"])
    world = World(threads=threads)
    total: Counter[str] = Counter()
    try:
        for rnd in range(rounds):
            counts: Counter[str] = Counter()
            await load_until_killed(world, server, rnd, rng)
            counts["acknowledged"] = world.acks
            tear_a_line(world, rnd, rng, data_dir)
            await server.start()
            await verify(world, server, rnd, counts)
            total.update(counts)
            assert not world.errors, (f"seed {seed} round {rnd}", world.errors[:20])
    finally:
        server.stop()
    line = (f"seed={seed} rounds={rounds} acknowledged={total['acknowledged']} "
            f"checked={total['expected_present'] + total['expected_absent']} "
            f"found={total['found']} lost={total['lost']} unreadable={total['unreadable']} "
            f"in_flight={total['in_flight']} torn_tails={total['torn_tails']}")
    print(line)
    record_property("counts", line)
    assert total["lost"] == 0 and total["unreadable"] == 0, line
    assert total["acknowledged"] >= 40 * rounds, line
    return total


async def test_kill9_under_load_loses_no_acknowledged_write(tmp_path: Path,
                                                            record_property: Any) -> None:
    total = await crash_loop(tmp_path, rounds=3, record_property=record_property)
    assert total["torn_tails"] >= 3  # one simulated per round, each closed by the next append


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_kill9_twenty_rounds_loses_no_acknowledged_write(tmp_path: Path,
                                                               record_property: Any) -> None:
    total = await crash_loop(tmp_path, rounds=20, record_property=record_property)
    assert total["torn_tails"] >= 20
