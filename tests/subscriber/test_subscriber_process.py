"""``aws-masker subscriber`` as a real process: the ready line, SIGTERM during traffic, SIGTERM while
Redis is down (no hang in backoff), a second signal during the shutdown, and the exit codes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from subscriber_harness import (
    WAIT_S,
    RedisServer,
    SubscriberProcess,
    dumps,
    masked_event,
    unmasked_event,
)

from aws_masker_stack.ports import free_port
from aws_masker_subscriber.cli import subscriber_main

Spawn = Callable[[list[str]], SubscriberProcess]
FAST = ["--reconnect-base", "0.05", "--reconnect-cap", "0.3"]
# Lines that mean "a connection attempt happened or was scheduled".
RECONNECT_MARKERS = ("Redis connection attempt failed", "reconnecting in", "subscribed to ")


def _get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def _wait_connected(base: str, proc: SubscriberProcess) -> None:
    proc.wait_line("subscribed to aws-masker:events")
    assert _get_json(base + "/health") == (200, {"status": "ok", "redis": "connected"})


def _after(messages: list[str], marker: str) -> list[str]:
    index = next(i for i, m in enumerate(messages) if marker in m)
    return messages[index + 1 :]


def test_sigterm_during_traffic_exits_0_with_final_stats(redis_server: RedisServer, spawn: Spawn) -> None:
    proc = spawn(["--redis-url", redis_server.url, *FAST])
    base = proc.ready_url()
    assert base.startswith("http://127.0.0.1:")
    _wait_connected(base, proc)

    stop = threading.Event()
    published = [0]

    def traffic() -> None:
        with redis_server.client() as client:
            i = 0
            while not stop.is_set():
                event = masked_event(request_id=f"t{i}") if i % 2 == 0 else unmasked_event(request_id=f"t{i}")
                client.publish("aws-masker:events", dumps(event))
                published[0] += 1
                i += 1
                stop.wait(0.002)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        proc.wait_line('"event_type": "data_unmasked"')  # traffic is flowing
        status, doc = _get_json(base + "/stats")
        assert status == 200 and doc["events"]["total"] >= 1
        proc.signal(signal.SIGTERM)
        assert proc.wait(WAIT_S) == 0
    finally:
        stop.set()
        thread.join(5)

    records = proc.records()  # every line is JSON (production)
    messages = [r["message"] for r in records]
    after = _after(messages, "SIGTERM received: shutting down")
    assert not [m for m in after if m.startswith(RECONNECT_MARKERS)]
    finals = [r for r in records if r.get("final_stats")]
    assert len(finals) == 1 and records[-1] is finals[0]
    assert doc["events"]["total"] <= finals[0]["events_total"] <= published[0]
    assert finals[0]["message"].startswith(f"final stats: {finals[0]['events_total']} events")
    assert proc.stderr == ""


def test_sigterm_while_redis_is_down_does_not_hang_in_backoff(spawn: Spawn) -> None:
    dead = free_port()  # nothing listens here
    proc = spawn(["--redis-port", str(dead), "--reconnect-base", "2", "--reconnect-cap", "30"])
    base = proc.ready_url()
    proc.wait_line("Redis connection attempt failed")
    status, body = _get_json(base + "/health")
    assert status in (200, 503) and body["redis"] == "connecting"
    proc.signal(signal.SIGTERM)
    assert proc.wait(WAIT_S) == 0  # generous: the backoff alone could be up to 30 s
    messages = [r["message"] for r in proc.records()]
    after = _after(messages, "SIGTERM received: shutting down")
    assert not [m for m in after if m.startswith(RECONNECT_MARKERS)]
    assert after[-1].startswith("final stats: 0 events")
    failed = [m for m in messages if m.startswith("Redis connection attempt failed")]
    assert all("Redis unreachable: connection refused" in m for m in failed)
    assert "Traceback" not in proc.stderr


def test_second_signal_during_shutdown_does_not_break_cleanup(
    redis_server: RedisServer, spawn: Spawn
) -> None:
    proc = spawn(["--redis-url", redis_server.url, *FAST])
    base = proc.ready_url()
    _wait_connected(base, proc)
    redis_server.publish([dumps(masked_event())])
    proc.wait_line("[data_masked]")
    proc.signal(signal.SIGTERM)
    proc.signal(signal.SIGINT)
    proc.signal(signal.SIGTERM)
    assert proc.wait(WAIT_S) == 0
    messages = [r["message"] for r in proc.records()]
    assert sum(m.startswith("final stats: 1 events") for m in messages) == 1
    assert messages[-1].startswith("final stats:")
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr


def test_development_ready_line_and_password_never_printed(spawn: Spawn) -> None:
    dead = free_port()
    proc = spawn(["--env", "development", "--redis-port", str(dead), "--redis-password", "hunter2", *FAST])
    line = proc.wait_line("aws-masker subscriber ready on http://127.0.0.1:")
    assert f"(channel aws-masker:events, redis redis://:***@127.0.0.1:{dead}/0)" in line
    proc.wait_line("Redis connection attempt failed")
    proc.signal(signal.SIGINT)
    assert proc.wait(WAIT_S) == 0
    assert all("hunter2" not in line for line in proc.lines)
    assert "final stats: 0 events" in proc.lines[-1]


def test_listen_address_in_use_exits_1(capsys: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = subscriber_main(["--listen", f"127.0.0.1:{port}", "--enable-redis-events", "false"])
    assert code == 1
    err = capsys.readouterr().err
    assert (
        err.startswith(f"aws-masker subscriber: cannot listen on 127.0.0.1:{port}") and err.count("\n") == 1
    )


def test_bad_value_exits_2_from_the_real_command(spawn: Spawn) -> None:
    proc = spawn(["--event-log-rate-limit", "lots"])
    assert proc.wait(WAIT_S) == 2
    assert proc.lines == []
    assert proc.stderr == (
        "aws-masker subscriber: error: --event-log-rate-limit: expected an integer >= 0, got 'lots'"
    )


def test_sigterm_after_its_reader_went_away_still_exits_0() -> None:
    """``aws-masker up`` killed: the subscriber's stdout pipe has no reader, then SIGTERM arrives.
    Logging the shutdown must not stop the shutdown."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aws_masker.cli", "subscriber", "--listen", "127.0.0.1:0",
         "--redis-port", str(free_port()), *FAST],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert b"aws-masker subscriber ready on http://127.0.0.1:" in proc.stdout.readline()
        proc.stdout.close()  # every later line hits EPIPE
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
