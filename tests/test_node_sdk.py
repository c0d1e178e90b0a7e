"""The official openai Node SDK (a second language) against the shipped server process."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .procs import ServerProcess

SCRIPT = Path(__file__).parent / "node" / "sdk_smoke.mjs"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("version", ["4", "latest"])
async def test_the_node_sdk_works_unmodified(tmp_path: Path, version: str) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for this test (Debian: apt-get install nodejs npm)")
    work = tmp_path / "node"
    work.mkdir()
    (work / "package.json").write_text('{"private": true, "type": "module"}')
    subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",
                    f"openai@{version}"], cwd=work, check=True, timeout=300)
    shutil.copy(SCRIPT, work / "smoke.mjs")
    server = ServerProcess(tmp_path / "data", tmp_path / "srv")
    await server.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            "node", "smoke.mjs", cwd=work, env={**os.environ, "BASE_URL": server.url + "/v1"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        server.stop()
    assert proc.returncode == 0, out.decode()
    assert b"node sdk ok" in out
