"""Jan-shaped benchmark data, generated once into `bench/data/` and reused.

One data dir per size, each holding one thread of N messages whose lines are 200-2,000 bytes: the
older part of the thread in the shapes Jan 0.5 writes (ULID ids, ms timestamps, `status: ready`),
the newer part canonical OpenAI lines exactly as Threadline writes them (so those can be served as
stored bytes). Next to the thread: `ids.txt` (a shuffled sample of message ids for the load
generator) and `meta.json`. A data dir is built under a temporary name and renamed into place, so an
interrupted generation is never reused.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from service.ids import new_message_id
from service.models import Message, encoder, message_decoder, text_part

# Bump when the shape of generated data changes: old caches are then left alone and rebuilt.
DATA_VERSION = 1
ROOT = Path(__file__).resolve().parent / "data"
SIZES: dict[str, int] = {"1k": 1_000, "100k": 100_000, "1M": 1_000_000}
MIN_LINE, MAX_LINE = 200, 2000
ID_SAMPLE = 100_000  # ids handed to wrk: enough to spread requests over the whole file
LEGACY_SHARE = 0.5  # the first half of each thread is Jan-legacy, the rest canonical

_WORDS = (  # noqa: SIM905 - a paragraph reads better than a list of 120 strings
    "the a of to and in that is for it with as was on be at by this had not are but from or have "
    "an they which one you were all we when there can more if out so said what up its about into "
    "than them only other new some could time these two may first then do any like my now over "
    "such our man me even most made after also did many before must through back years where much "
    "your way well down should because each just those people how too little state good very make "
    "function return import async await class def const let value error thread message index "
    "naïve café résumé — “quoted” 日本語 Ελληνικά 🙂 ✓ `code` **bold** _em_ [link](https://x.y)"
).split()
_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
                             b"0123456789ABCDEFGHJKMNPQRSTVWXYZ")


@dataclass(frozen=True)
class Dataset:
    """A generated data dir: `<path>/threads/<thread_id>/messages.jsonl` plus ids and metadata."""

    label: str
    path: Path
    thread_id: str
    messages: int
    jsonl_bytes: int

    @property
    def ids_file(self) -> Path:
        return self.path / "ids.txt"

    @property
    def jsonl(self) -> Path:
        return self.path / "threads" / self.thread_id / "messages.jsonl"

    @property
    def thread_dir(self) -> Path:
        return self.path / "threads" / self.thread_id


def _corpus(rng: random.Random) -> str:
    """~256 KB of chat-like text (prose, markdown, code with quotes and backslashes, non-ASCII);
    lines take random slices of it."""
    parts: list[str] = []
    size = 0
    while size < 256_000:
        kind = rng.random()
        if kind < 0.1:
            chunk = ('\n```python\ndef f(x):\n    return "a\\tb" + x  # it\'s\n```\n')
        elif kind < 0.2:
            chunk = "\n\n- " + " ".join(rng.choices(_WORDS, k=8)) + "\n"
        else:
            chunk = " ".join(rng.choices(_WORDS, k=rng.randint(5, 25))) + ". "
        parts.append(chunk)
        size += len(chunk)
    return "".join(parts)


def _ulid(ms: int) -> str:
    """A ULID-shaped id (26 Crockford base-32 chars, time first), as Jan 0.5 uses."""
    raw = ((ms << 80) | int.from_bytes(os.urandom(10), "big")).to_bytes(16, "big")
    return base64.b32encode(raw)[:26].translate(_CROCKFORD).decode()


def _legacy(mid: str, thread_id: str, role: str, text: str, ms: int) -> bytes:
    obj: dict[str, object] = {
        "id": mid, "thread_id": thread_id, "type": "Thread", "role": role,
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
        "status": "ready", "created": ms, "updated": ms, "object": "thread.message",
    }
    if role == "assistant":
        obj["assistant_id"] = "jan"
        obj["metadata"] = {"token_speed": 23.4}
    return json.dumps(obj, ensure_ascii=False).encode()


def _canonical(mid: str, thread_id: str, role: str, text: str, ms: int) -> bytes:
    msg = Message(id=mid, created_at=ms // 1000, thread_id=thread_id, role=role,  # type: ignore[arg-type]
                  content=[text_part(text)], attachments=[], metadata={},
                  assistant_id="asst_jan" if role == "assistant" else None)
    return encoder.encode(msg)


def _line(rng: random.Random, corpus: str, legacy: bool, thread_id: str, i: int, ms: int
          ) -> tuple[str, bytes]:
    role = "user" if i % 2 == 0 else "assistant"
    mid = _ulid(ms) if legacy else new_message_id()
    make = _legacy if legacy else _canonical
    target = rng.randint(MIN_LINE, MAX_LINE)
    empty = len(make(mid, thread_id, role, "", ms))
    want = max(target - empty, 1)
    at = rng.randrange(0, len(corpus) - MAX_LINE)
    text = corpus[at:at + want]
    line = make(mid, thread_id, role, text, ms)
    while len(line) > MAX_LINE:  # escapes and multi-byte chars made it longer than aimed
        text = text[: len(text) - (len(line) - MAX_LINE) - 1]
        line = make(mid, thread_id, role, text, ms)
    return mid, line


def _jan_thread(thread_id: str, ms: int) -> dict[str, object]:
    return {
        "id": thread_id, "object": "thread", "title": "Benchmark thread",
        "assistants": [{"assistant_id": "jan", "assistant_name": "Jan", "model": {
            "id": "llama3.2-3b-instruct", "settings": {}, "parameters": {},
            "engine": "llama-cpp"}}],
        "created": ms, "updated": ms, "metadata": {},
    }


def generate(label: str, n: int, dest: Path, seed: int) -> None:
    """Write a data dir of one thread of `n` messages (and ids.txt, meta.json) into `dest`."""
    rng = random.Random(seed)
    corpus = _corpus(rng)
    thread_id = f"jan_{1717666232 + n}"
    folder = dest / "threads" / thread_id
    folder.mkdir(parents=True)
    start_ms = 1717666240000
    (folder / "thread.json").write_text(json.dumps(_jan_thread(thread_id, start_ms), indent=2))
    legacy_until = int(n * LEGACY_SHARE)
    ids: list[str] = []
    total = 0
    with open(folder / "messages.jsonl", "wb") as f:
        chunk: list[bytes] = []
        for i in range(n):
            mid, line = _line(rng, corpus, i < legacy_until, thread_id, i, start_ms + i * 1500)
            ids.append(mid)
            chunk.append(line)
            total += len(line) + 1
            if len(chunk) >= 4096:
                f.write(b"\n".join(chunk) + b"\n")
                chunk = []
        if chunk:
            f.write(b"\n".join(chunk) + b"\n")
    sample = rng.sample(ids, min(len(ids), ID_SAMPLE))
    (dest / "ids.txt").write_text("\n".join(sample) + "\n")
    meta = {"label": label, "thread_id": thread_id, "messages": n, "jsonl_bytes": total,
            "legacy_share": LEGACY_SHARE, "seed": seed, "version": DATA_VERSION}
    (dest / "meta.json").write_text(json.dumps(meta, indent=2))


def _check_canonical(ds: Dataset) -> None:
    """Warn if the cached canonical lines are no longer what this Threadline writes (the models
    changed): they would then be normalized on every read, and the numbers would mislead."""
    with open(ds.jsonl, "rb") as f:
        f.seek(max(ds.jsonl_bytes - 4096, 0))
        last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        same = encoder.encode(message_decoder.decode(last)) == last
    except msgspec.DecodeError:
        same = False
    if not same:
        print(f"bench: warning: cached canonical lines in {ds.path} are not canonical for the "
              f"current service.models; delete {ROOT} (or bump DATA_VERSION) to regenerate")


def dataset(label: str, root: Path = ROOT, log: bool = True) -> Dataset:
    """The data dir for size `label`, generated on first use."""
    n = SIZES[label]
    path = root / f"v{DATA_VERSION}" / label
    if not (path / "meta.json").is_file():
        tmp = path.with_name(f".{label}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if log:
            print(f"bench: generating {label} thread ({n:,} messages) into {path} ...", flush=True)
        started = time.monotonic()
        generate(label, n, tmp, seed=n)
        shutil.rmtree(path, ignore_errors=True)
        os.rename(tmp, path)
        if log:
            print(f"bench: generated {label} in {time.monotonic() - started:.1f} s", flush=True)
    meta = json.loads((path / "meta.json").read_text())
    ds = Dataset(label, path, meta["thread_id"], meta["messages"], meta["jsonl_bytes"])
    _check_canonical(ds)
    return ds


def read_ids(ds: Dataset) -> list[str]:
    return ds.ids_file.read_text().split()


def scratch_dir(name: str, root: Path = ROOT) -> Path:
    """A fresh empty folder under the data root (same filesystem as the data, so fsync costs are
    real; /tmp may be tmpfs)."""
    path = root / "scratch" / f"{name}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
