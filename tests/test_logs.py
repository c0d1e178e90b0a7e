"""Structured logs and graceful shutdown, through the real CLI: `log_format = "json"` makes every
line (the access log included) one JSON object, and SIGTERM stops the server promptly and cleanly,
even with an event stream open."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from service import logs
from service.config import Config
from service.logs import JsonFormatter

from .procs import ServerProcess


async def test_json_logs_and_prompt_graceful_shutdown_on_sigterm(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", tmp_path / "work", "--log-level", "info",
                           "--access-log", "--log-format", "json")
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(server.url + "/v1/threads?x=1", json={}) as resp:
                assert resp.status == 200
            async with http.get(server.url + "/v1/events") as stream:
                assert stream.status == 200
                assert server.proc is not None
                server.proc.terminate()
                started = time.monotonic()
                code = server.proc.wait(timeout=10)
                took = time.monotonic() - started
    finally:
        server.kill9()
    assert code == 0
    assert took < 5.0  # the open stream is closed at shutdown, not waited out
    lines = [line for line in server.log.read_text().splitlines() if not line.startswith("---")]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    access = [r for r in records if r["logger"] == "aiohttp.access"]
    created = next(r for r in access if r["method"] == "POST")
    assert created["path"] == "/v1/threads?x=1"
    assert created["status"] == 200 and created["duration_ms"] >= 0
    assert any(r["message"].startswith("serving ") for r in records)
    assert records[-1]["message"] == "stopped"


def test_json_formatter_carries_extra_fields_and_exceptions() -> None:
    record = logging.LogRecord("threadline", logging.ERROR, __file__, 1, "failed %s", ("x",), None)
    record.thread_id = "jan_1"
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "failed x" and out["level"] == "error"
    assert out["thread_id"] == "jan_1"
    assert "ValueError: boom" in out["exception"]
    assert out["time"].endswith("+00:00")


def test_plain_format_is_one_readable_line_and_watchfiles_chatter_is_quiet(
        capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.setup(Config(log_format="plain"))
        logging.getLogger("threadline").info("serving %s", "here")
        logging.getLogger("watchfiles.main").info("3 changes detected")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        logging.getLogger("watchfiles").setLevel(logging.NOTSET)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].endswith(" INFO threadline: serving here")


async def test_a_request_that_cannot_be_parsed_logs_no_traceback_and_no_header(
        tmp_path: Path) -> None:
    """A header line too long is a 400 from aiohttp's parser, which logged it as an error with
    a traceback quoting the line: here an API key. Now nothing at the default level."""
    server = ServerProcess(tmp_path / "data", tmp_path / "run", "--log-level", "info")
    await server.start()
    secret = "sk-" + "s3cret" * 12_000  # over the 64 KiB a header may have
    try:
        for head in (f"Authorization: Bearer {secret}", "Content-Length: -5",
                     "Transfer-Encoding: chunked\r\nContent-Length: 5",
                     # a body not in its Content-Encoding: aiohttp meets it again as it drains
                     "Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
                     "Content-Length: 10\r\n\r\nnotgzip!!!"):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(f"POST /v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n\r\n"
                         .encode())
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)  # the server closes the stream
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.split()[1] == b"400", answer
            # The error envelope, as for every other error, and not quoting the request's bytes
            assert b"Content-Type: application/json" in head, answer
            error = json.loads(body)["error"]
            assert error["type"] == "invalid_request_error" and "s3cret" not in error["message"]
            writer.close()
        async with aiohttp.ClientSession() as http, http.get(server.url + "/healthz") as resp:
            assert resp.status == 200  # and it serves on
    finally:
        server.stop()
    log = server.log.read_text()
    assert "s3cret" not in log and "Traceback" not in log and "ERROR" not in log, log[-3000:]
