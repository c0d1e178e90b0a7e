"""The Docker image and docker-compose.yml, built and run for real with podman.

Builds the image, runs it with a named volume, creates a thread and a message over HTTP, restarts
the container (and replaces it) and reads the message back from the volume, runs the image's
HEALTHCHECK, checks it runs as non-root and stops promptly on SIGTERM; checks the image refuses to
serve without a key; brings the compose file up and asks /healthz. Sets up podman first
(`../shared/tools/container-setup`, idempotent, needs root). Run by `make container-test` and CI.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .procs import free_port

pytestmark = [pytest.mark.slow, pytest.mark.container, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT.parent / "shared" / "tools" / "container-setup"
COMPOSE = "/opt/container-tools/bin/podman-compose"
IMAGE = "localhost/threadline:test"
CA = "/etc/ssl/certs/ca-certificates.crt"
KEY = "test-key-" + secrets.token_hex(8)


def build_args() -> list[str]:
    """What container-setup prints: docker format (for HEALTHCHECK), host network, and this
    machine's CA for pip behind its package proxy (not needed with a normal Docker)."""
    args = ["--format", "docker", "--network=host"]
    if os.path.exists(CA):
        args += ["-v", f"{CA}:/run/host-ca.crt:ro", "--env", "PIP_CERT=/run/host-ca.crt"]
    return args


def run(*cmd: str, check: bool = True, timeout: float = 120, **kw: Any
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc


def podman(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return run("podman", *args, **kw)


def http(method: str, url: str, body: Any = None, key: str | None = KEY
         ) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key is not None:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_healthy(base: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll /healthz until 200 (a container we cannot be notified by)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = http("GET", base + "/healthz", key=None)
            if status == 200:
                return body  # type: ignore[no-any-return]
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{base}/healthz not healthy after {timeout} s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    if SETUP.exists():  # idempotent: installs podman on a fresh CI machine, else a quick check
        run("bash", str(SETUP), timeout=900)
    assert shutil.which("podman"), f"no podman and no {SETUP} to set it up"
    before = _image_id(IMAGE)
    podman("build", *build_args(), "-t", IMAGE, str(ROOT), timeout=1200)
    if before and before != _image_id(IMAGE):  # the last run's image, untagged now: not kept
        podman("rmi", before, check=False)
    yield IMAGE


def _image_id(name: str) -> str:
    proc = podman("image", "inspect", "--format", "{{.Id}}", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    suffix = secrets.token_hex(4)
    made = {"container": f"tl-test-{suffix}", "volume": f"tl-test-data-{suffix}",
            "second": f"tl-test-{suffix}-2"}
    yield made
    podman("rm", "-f", "-t", "0", made["container"], made["second"], check=False)
    podman("volume", "rm", "-f", made["volume"], check=False)


def start(image: str, name: str, volume: str, port: int, *extra: str) -> str:
    podman("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:1337", "-v", f"{volume}:/data",
           "-e", f"THREADLINE_API_KEYS={KEY}", *extra, image)
    return f"http://127.0.0.1:{port}"


def test_image_serves_keeps_data_on_its_volume_and_stops_promptly(
        image: str, names: dict[str, str]) -> None:
    name, volume = names["container"], names["volume"]
    podman("volume", "create", volume)
    base = start(image, name, volume, free_port())
    wait_healthy(base)

    status, _ = http("GET", base + "/v1/threads", key=None)
    assert status == 401  # 0.0.0.0 inside the container: the key is enforced
    status, thread = http("POST", base + "/v1/threads", {"metadata": {"via": "container"}})
    assert status == 200, thread
    status, message = http("POST", f"{base}/v1/threads/{thread['id']}/messages",
                           {"role": "user", "content": "survives restarts"})
    assert status == 200, message
    path = f"/v1/threads/{thread['id']}/messages/{message['id']}"

    assert podman("exec", name, "id", "-u").stdout.strip() == "10001"  # not root
    owner = podman("exec", name, "stat", "-c", "%u",
                   f"/data/threads/{thread['id']}/messages.jsonl")
    assert owner.stdout.strip() == "10001"

    # The image's own HEALTHCHECK (podman runs it on demand where no systemd timer does).
    podman("healthcheck", "run", name)
    health = podman("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
    assert health == "healthy"

    podman("restart", "-t", "10", name)
    wait_healthy(base)
    assert http("GET", base + path) == (200, message)

    started = time.monotonic()
    podman("stop", "-t", "20", name)  # SIGTERM, SIGKILL only after 20 s
    took = time.monotonic() - started
    assert took < 5.0, f"SIGTERM took {took:.1f} s"
    state = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    assert state == "0"
    logs = podman("logs", name)
    assert "stopped" in logs.stdout + logs.stderr  # shut down through the graceful path

    # A new container on the same volume: the data lives on the volume, not in the container.
    podman("rm", name)
    base = start(image, names["second"], volume, free_port())
    wait_healthy(base)
    assert http("GET", base + path) == (200, message)


def test_image_refuses_to_serve_without_a_key(image: str) -> None:
    proc = podman("run", "--rm", image, check=False, timeout=60)
    assert proc.returncode == 2
    assert "refusing to bind non-loopback host '0.0.0.0' with no api_keys" in proc.stderr


def test_compose_file_runs_the_service(image: str) -> None:
    project = "tltest" + secrets.token_hex(4)
    port = free_port()
    env = {**os.environ, "THREADLINE_API_KEYS": KEY, "THREADLINE_HOST_PORT": str(port),
           "THREADLINE_VOLUME": f"{project}-data",  # never the user's own threadline-data
           "THREADLINE_WATCH_POLLING": "true"}  # one of the settings compose passes on
    compose = (COMPOSE, "-p", project)
    try:
        run(*compose, f"--podman-build-args={' '.join(build_args())}", "up", "-d", "--build",
            cwd=ROOT, env=env, timeout=1200)
        base = f"http://127.0.0.1:{port}"
        health = wait_healthy(base)
        assert health["status"] == "ok"
        assert health["watcher"]["polling"] is True  # the .env/environment setting got through
        assert http("GET", base + "/v1/threads")[0] == 200
        assert http("GET", base + "/v1/threads", key="wrong")[0] == 401
        volumes = podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
        assert f"{project}-data" in volumes
    finally:
        run(*compose, "down", "-v", cwd=ROOT, env=env, check=False, timeout=300)
