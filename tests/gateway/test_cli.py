"""``python -m aws_masker_gateway``: one ready line, per-request log lines, clean shutdown, bad configs."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_harness import ECHO_PLUGIN

pytestmark = pytest.mark.e2e

GOOD = """
_format_version: "3.0"
services:
  - name: s
    url: http://127.0.0.1:1/
    routes:
      - name: blocked
        paths: ["/blocked"]
        plugins:
          - {name: echo, config: {action: exit_access}}
"""


@pytest.fixture
def prefix() -> Iterator[Path]:
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="kgw-cli-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def gateway_env(prefix: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "KONG_PLUGINS": "bundled,echo",
            "KONG_PLUGINSERVER_NAMES": "echo",
            "KONG_PLUGINSERVER_ECHO_SOCKET": f"{prefix}/echo.sock",
            "KONG_PLUGINSERVER_ECHO_START_CMD": (
                f"{sys.executable} {ECHO_PLUGIN} --no-lua-style --kong-prefix {prefix}"
            ),
            "KONG_PLUGINSERVER_ECHO_QUERY_CMD": f"{sys.executable} {ECHO_PLUGIN} --dump",
        }
    )
    return env


def command(config: Path, prefix: Path) -> list[str]:
    return [
        sys.executable, "-m", "aws_masker_gateway", "--config", str(config),
        "--listen", "127.0.0.1:0", "--prefix", str(prefix),
    ]  # fmt: skip


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_bad_config_exits_non_zero_with_kong_message(tmp_path: Path, prefix: Path) -> None:
    config = tmp_path / "kong.yml"
    config.write_text(GOOD.replace("action: exit_access", "action: explode"))
    proc = subprocess.run(
        command(config, prefix), env=gateway_env(prefix), capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "failed parsing declarative configuration" in proc.stderr
    assert "'routes' entry 1 ('blocked') > 'plugins' entry 1 ('echo')" in proc.stderr
    assert "config.action: expected one of:" in proc.stderr


def test_serves_logs_and_stops_cleanly(tmp_path: Path, prefix: Path) -> None:
    config = tmp_path / "kong.yml"
    config.write_text(GOOD)
    proc = subprocess.Popen(
        command(config, prefix),
        env=gateway_env(prefix),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        match = re.fullmatch(
            r"aws-masker gateway ready on http://127\.0\.0\.1:(\d+) \(1 routes, plugins: echo\)\n", ready
        )
        assert match, ready
        servers = children_of(proc.pid)
        assert len(servers) == 1  # the plugin server is a direct child
        conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
        conn.request("POST", "/blocked?key=SECRET", body=b"SECRET-BODY")
        response = conn.getresponse()
        assert response.status == 403
        request_id = response.getheader("X-Kong-Request-Id")
        conn.close()
        proc.send_signal(signal.SIGTERM)
        rest, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert rest == ""  # exactly one line on stdout
    assert "POST route=blocked status=403" in stderr and f"request_id={request_id}" in stderr
    assert "SECRET" not in stderr
    for pid in servers:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        )


def test_a_prefix_that_cannot_be_created_is_reported_as_such(tmp_path: Path, prefix: Path) -> None:
    config = tmp_path / "kong.yml"
    config.write_text(GOOD)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bad_prefix = blocker / "prefix"  # under a regular file: mkdir fails with ENOTDIR
    proc = subprocess.run(
        command(config, bad_prefix), env=gateway_env(prefix), capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1
    assert f"cannot use the prefix {bad_prefix}" in proc.stderr
    assert "cannot read" not in proc.stderr
