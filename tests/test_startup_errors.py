"""Start-up failures say what is wrong in one line and stop, instead of a traceback or a loop."""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .procs import ROOT, canonical_line, clean_env, free_port

NOBODY = 65534


def _as_nobody() -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def _nobody_can_run_python() -> bool:
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        return False
    probe = subprocess.run([*_as_nobody(), sys.executable, "-c", "import service"], cwd=ROOT,
                           env=clean_env(), capture_output=True, timeout=60)
    return probe.returncode == 0


@pytest.mark.skipif(not _nobody_can_run_python(),
                    reason="needs root, setpriv (util-linux) and an interpreter other users can "
                           "run, to start the server as another user")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_data_folder_the_server_cannot_write_is_one_clear_line_and_exit_2(
        workers: str) -> None:
    """As in a container whose user does not own the bind-mounted Jan folder. (Outside pytest's
    tmp_path, which other users cannot enter.)"""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        (data / "threads").mkdir(parents=True)
        Path(tmp).chmod(0o755)
        started = time.monotonic()
        proc = subprocess.run(
            [*_as_nobody(), sys.executable, "-m", "service", "serve", "--data-dir", str(data),
             "--port", "0", "--workers", workers],
            cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
        left = list((data / "threads").iterdir())
    assert proc.returncode == 2, proc.stderr
    assert time.monotonic() - started < 20
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "cannot be written" in lines[0] and "uid 0" in lines[0] and "--user 0:0" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not left


def test_workers_that_die_as_they_start_are_logged_and_not_restarted_forever() -> None:
    code = ("import logging, sys\n"
            "logging.basicConfig(level=logging.INFO)\n"
            "from service import workers\n"
            "workers.RESTART_PAUSE = 0.05\n"
            "sys.exit(workers.run(2, lambda: 1 // 0))\n")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert time.monotonic() - started < 20
    assert "ZeroDivisionError" in proc.stderr  # the cause, not only "exited with 1"
    assert "stopping" in proc.stderr
    assert proc.stderr.count("starting another") < 5


def test_a_port_in_use_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "service", "serve", "--data-dir", str(tmp_path / "data"),
             "--port", str(port)],
            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("threadline: ")]
    assert errors == [f"threadline: cannot listen on 127.0.0.1:{port}: error while attempting "
                      f"to bind on address ('127.0.0.1', {port}): address already in use "
                      "(another server on that port? set --port)"], proc.stderr
    # The folder did not exist: it was made, and the log says so (a mistyped path shows).
    assert (tmp_path / "data" / "threads").is_dir()
    assert "did not exist: created it" in proc.stderr


def test_an_event_journal_that_is_not_a_file_is_one_clear_line_and_exit_2(tmp_path: Path
                                                                          ) -> None:
    data = tmp_path / "data"
    (data / ".threadline" / "events.jsonl").mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--data-dir", str(data), "--port", "0"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"threadline: {data}/.threadline/events.jsonl is not a regular file: remove it (the "
        "event journal is made again from the threads' files).")


def test_a_thread_create_the_disk_refuses_leaves_no_folder_behind(tmp_path: Path) -> None:
    """Files may not grow past 64 KB for this server (RLIMIT_FSIZE: the kernel refuses the write,
    as a full disk would): the create is a 503 and leaves nothing, not a hidden `.new-` folder
    holding what it wrote."""
    data = tmp_path / "data"
    port = free_port()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--data-dir", str(data), "--port",
         str(port), "--log-level", "warning"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=limit)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc)
        body = json.dumps({"messages": [{"role": "user", "content": "x" * 40_000}] * 2})
        request = urllib.request.Request(url + "/v1/threads", data=body.encode(),
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 503
        assert json.loads(caught.value.read())["error"]["message"] == (
            "The data folder cannot be used: File too large (the data folder).")
        assert list((data / "threads").iterdir()) == []
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "did not start"
            time.sleep(0.05)  # polling a process we cannot be notified by


@pytest.mark.parametrize("space_returns", [True, False])
def test_a_start_whose_journal_the_disk_refuses_still_serves(tmp_path: Path,
                                                             space_returns: bool) -> None:
    """A first start on a Jan folder journals what it finds (a baseline per thread: its
    messages are not new); on a full disk (RLIMIT_FSIZE: the kernel refuses the write as a full
    disk would) that used to end the start-up with a traceback, so nothing could even be read.
    It serves; the baselines are journaled once an append works, during the run (space returns)
    or at a later start, and the folder's messages are never taken for new ones (which a
    resume would replay)."""
    data = tmp_path / "data"
    threads = [f"jan_{1717666000 + i}" for i in range(20)]
    for i, thread_id in enumerate(threads):
        folder = data / "threads" / thread_id
        folder.mkdir(parents=True)
        (folder / "thread.json").write_text(json.dumps({"id": thread_id, "title": f"t{i}"}))
        (folder / "messages.jsonl").write_bytes(
            canonical_line(f"msg_{i:024d}", thread_id, f"hello {i}") + b"\n")
    argv = [sys.executable, "-m", "service", "serve", "--data-dir", str(data), "--log-level",
            "warning"]
    journal = data / ".threadline" / "events.jsonl"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, resource.RLIM_INFINITY))

    for limited in (True, False):
        port = free_port()
        proc = subprocess.Popen([*argv, "--port", str(port)], cwd=tmp_path, env=clean_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=limit if limited else None)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, proc)
            for i, thread_id in enumerate(threads):
                with urllib.request.urlopen(f"{url}/v1/threads/{thread_id}/messages",
                                            timeout=10) as resp:
                    assert [m["id"] for m in json.load(resp)["data"]] == [f"msg_{i:024d}"]
            if limited and space_returns:
                unlimited = resource.RLIM_INFINITY
                resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (unlimited, unlimited))
                body = b'{"messages": [{"role": "user", "content": "space again"}]}'
                request = urllib.request.Request(
                    f"{url}/v1/threads", data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=10) as resp:
                    created = json.load(resp)["id"]
                deadline = time.monotonic() + 10  # journaled after the create's own record
                while b'"b"' not in journal.read_bytes():
                    assert time.monotonic() < deadline, journal.read_bytes()
                    time.sleep(0.05)  # polling a file another process writes
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "Traceback" not in err.decode()
        if limited:
            assert "event journal: cannot journal the 20 messages" in err.decode()
    lines = journal.read_bytes().split(b"\n")
    assert lines[-1] == b""  # every line whole (what the disk took of a write is taken back)
    records = [json.loads(line) for line in lines[:-1] if line]
    # A baseline for each thread, naming its last message; no message counted as new.
    assert {r["t"]: r.get("b") for r in records if "b" in r} == {
        thread_id: f"msg_{i:024d}" for i, thread_id in enumerate(threads)}
    # The one message created while the server ran is the only one journaled as new.
    assert [r["t"] for r in records if "m" in r] == ([created] if space_returns else [])

