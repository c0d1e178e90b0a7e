"""Micro-benchmark: one 1 KB read at a random offset of a page-cached `messages.jsonl`, by
`os.pread`, an `mmap` slice, `os.pread` in the default thread pool (`run_in_executor`), and
aiofiles (`seek` + `read`, two thread-pool hops). Timeit-style: N reads per repeat, median of
repeats, reported as microseconds per read.

    python -m bench.micro [FILE] [--reads N] [--repeats R]
"""

from __future__ import annotations

import argparse
import asyncio
import mmap
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import aiofiles

READ = 1024


def _offsets(size: int, n: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(0, max(size - READ, 1)) for _ in range(n)]


def _sync(fn: Callable[[int], bytes], offsets: list[int]) -> float:
    started = time.perf_counter()
    for off in offsets:
        fn(off)
    return time.perf_counter() - started


async def _executor(fd: int, offsets: list[int]) -> float:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    for off in offsets:
        await loop.run_in_executor(None, os.pread, fd, READ, off)
    return time.perf_counter() - started


async def _aiofiles(path: Path, offsets: list[int]) -> float:
    async with aiofiles.open(path, "rb") as f:
        started = time.perf_counter()
        for off in offsets:
            await f.seek(off)
            await f.read(READ)
        return time.perf_counter() - started


def run(path: Path, reads: int = 20_000, repeats: int = 5) -> dict[str, float]:
    """Median microseconds per 1 KB read, by method."""
    size = path.stat().st_size
    offsets = _offsets(size, reads)
    fd = os.open(path, os.O_RDONLY)
    mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    with open(path, "rb") as f:  # warm the page cache: every method reads cached bytes
        while f.read(1 << 24):
            pass
    times: dict[str, list[float]] = {k: [] for k in
                                      ("os.pread", "mmap slice", "run_in_executor(os.pread)",
                                       "aiofiles seek+read")}
    try:
        for _ in range(repeats):
            times["os.pread"].append(_sync(lambda o: os.pread(fd, READ, o), offsets))
            times["mmap slice"].append(_sync(lambda o: mm[o:o + READ], offsets))
            # Thread-pool methods are ~100x slower: a tenth of the reads keeps the run short.
            few = offsets[: max(reads // 10, 100)]
            scale = len(offsets) / len(few)
            times["run_in_executor(os.pread)"].append(asyncio.run(_executor(fd, few)) * scale)
            times["aiofiles seek+read"].append(asyncio.run(_aiofiles(path, few)) * scale)
    finally:
        mm.close()
        os.close(fd)
    return {k: statistics.median(v) / reads * 1e6 for k, v in times.items()}


def table(results: dict[str, float]) -> str:
    base = results["os.pread"]
    rows = ["| method (1 KB at a random offset, page cache) | µs per read | x os.pread |",
            "|---|---:|---:|"]
    rows += [f"| {k} | {v:.2f} | {v / base:.1f}x |" for k, v in results.items()]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.micro")
    parser.add_argument("file", nargs="?", type=Path)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    path = args.file
    if path is None:
        from .data import dataset
        path = dataset("100k").jsonl
    print(table(run(path, args.reads, args.repeats)))


if __name__ == "__main__":
    main()
