"""``aws-masker up`` (make run): which Redis it picks for the monitoring events, and that the demo
shows the subscriber's lines for its request."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from redis_server import RedisServer

from aws_masker_stack.ports import free_port, free_ports
from aws_masker_stack.up import Child, find_redis

from .stack import CLI, ROOT

pytestmark = pytest.mark.e2e


def up(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    ports = [str(port) for port in free_ports(3)]
    return subprocess.run(
        [*CLI, "up", "--exit-after-demo", "--run-dir", str(tmp_path / "run"),
         "--listen", f"127.0.0.1:{ports[0]}", "--stub-listen", f"127.0.0.1:{ports[1]}",
         "--subscriber-listen", f"127.0.0.1:{ports[2]}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_up_uses_redis_url_and_shows_the_subscriber(
    tmp_path: Path, make_redis: Callable[..., RedisServer]
) -> None:
    server = make_redis(password="up-test-password")
    env = {**os.environ, "REDIS_URL": f"redis://:up-test-password@127.0.0.1:{server.port}/0"}
    env.pop("ANTHROPIC_API_KEY", None)
    out = up(tmp_path, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"monitoring events go to redis://127.0.0.1:{server.port}/0 (REDIS_URL)" in out.stdout
    assert "subscriber (2 events for request" in out.stdout
    assert "[data_masked]" in out.stdout and "[data_unmasked]" in out.stdout
    assert re.search(r"^aws-masker up: live page: http://127\.0\.0\.1:\d+/ ", out.stdout, re.M)
    assert re.search(r"^Watch masking live: http://127\.0\.0\.1:\d+/ in a browser", out.stdout, re.M)
    assert "up-test-password" not in out.stdout + out.stderr


def test_up_without_a_redis_that_answers_runs_without_events(tmp_path: Path) -> None:
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    env.pop("ANTHROPIC_API_KEY", None)
    out = up(tmp_path, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "does not answer" in out.stdout and "running without monitoring events" in out.stdout
    assert "client got back     : HTTP 200" in out.stdout
    assert "enable_event_monitoring: false" in (tmp_path / "run" / "kong.yml").read_text()


def test_a_private_redis_server_when_none_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    children: list[Child] = []
    try:
        target = find_redis(tmp_path, dict(os.environ), children, default=("127.0.0.1", free_port()))
        assert target is not None and target.private and [c.name for c in children] == ["redis"]
        from aws_masker_stack.localredis import answers

        assert answers(target) is None
    finally:
        for child in children:
            child.stop()
    assert children[0].proc.poll() is not None


def test_killing_up_stops_every_child(tmp_path: Path, make_redis: Callable[..., RedisServer]) -> None:
    """SIGKILL leaves ``up`` no chance to clean up: its children (stub, subscriber, gateway and the
    gateway's plugin server) must stop on their own."""
    server = make_redis()
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{server.port}/0"}
    env.pop("ANTHROPIC_API_KEY", None)
    ports = [str(port) for port in free_ports(3)]
    proc = subprocess.Popen(
        [*CLI, "up", "--run-dir", str(tmp_path / "run"), "--listen", f"127.0.0.1:{ports[0]}",
         "--stub-listen", f"127.0.0.1:{ports[1]}", "--subscriber-listen", f"127.0.0.1:{ports[2]}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    descendants: list[psutil.Process] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Ctrl-C stops everything" in line:
                break
        else:
            pytest.fail(f"aws-masker up exited ({proc.wait()}) before it was ready")
        descendants = psutil.Process(proc.pid).children(recursive=True)
        commands = " ".join(" ".join(p.cmdline()) for p in descendants)
        for part in ("stub", "subscriber", "gateway", "aws-masker-server"):
            assert part in commands
        proc.kill()
        proc.wait()
        _, alive = psutil.wait_procs(descendants, timeout=30)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        for child in descendants:
            with contextlib.suppress(psutil.Error):
                child.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
