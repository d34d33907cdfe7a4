"""The publisher against a real redis-server that the tests start, stop and restart: one
connection, batches on the channel, a stopped Redis, a restarted one, auth and TLS."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from redis_server import ChannelListener, RedisServer, make_tls_files, redis_server_has_tls

from aws_masker import publisher
from aws_masker.publisher import Publisher, PublisherSettings


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def settings_for(server: RedisServer, **conf: Any) -> PublisherSettings:
    base = {
        "redis_port": server.port,
        "redis_password": server.password,
        "event_flush_interval_ms": 50,
        "event_stats_interval_s": 3600,
    }
    return PublisherSettings.from_mapping({**base, **conf})


def event(n: int) -> dict[str, Any]:
    return {"event_type": "data_masked", "n": n}


def publisher_connections(server: RedisServer) -> int:
    with server.client() as client:
        return sum(1 for c in client.client_list() if c.get("name") == "aws-masker-publisher")


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher, "BACKOFF_CAP", 0.2)


def test_batches_reach_the_channel_on_one_connection(make_redis: Callable[..., RedisServer]) -> None:
    server = make_redis()
    listener = ChannelListener(server)
    pub = Publisher(settings_for(server, event_batch_size=5))
    threads = [
        threading.Thread(target=lambda k=k: [pub.enqueue(event(k * 100 + i)) for i in range(50)])
        for k in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(lambda: len(listener.events()) == 400)
    assert sorted(e["n"] for e in listener.events()) == sorted(
        k * 100 + i for k in range(8) for i in range(50)
    )
    assert all(m["event_type"] == "batch" and m["count"] <= 5 for m in listener.messages)
    assert publisher_connections(server) == 1  # whatever the number of enqueueing threads
    pub.close()
    listener.close()


def test_redis_stopped_then_restarted(make_redis: Callable[..., RedisServer], fast_backoff: None) -> None:
    server = make_redis()
    pub = Publisher(settings_for(server, event_batch_size=1, event_queue_size=20))
    pub.enqueue(event(0))
    wait_for(lambda: pub.counters()["published"] == 1)
    server.stop()
    started = time.monotonic()
    for n in range(1, 200):
        pub.enqueue(event(n))  # never blocks, never raises
    assert time.monotonic() - started < 5  # generous: enqueue does not wait for Redis
    wait_for(lambda: pub.counters()["dropped"] >= 150 and pub.counters()["errors"] >= 2)
    lines = list(iter(pub.take_line, None))
    assert [lvl for lvl, _ in lines] == ["warn"]  # one line for the outage, not one per attempt
    assert (
        "cannot publish to redis://127.0.0.1" in lines[0][1] and "Connection closed by server;" in lines[0][1]
    )
    server.start()  # the same port
    listener = ChannelListener(server)
    pub.enqueue(event(999))
    wait_for(lambda: any(e["n"] == 999 for e in listener.events()), timeout=10)
    assert any("reconnected" in text for _, text in iter(pub.take_line, None))
    pub.close()
    listener.close()


def test_wrong_password_says_so_and_drops(make_redis: Callable[..., RedisServer], fast_backoff: None) -> None:
    server = make_redis(password="right-password-1")
    pub = Publisher(
        PublisherSettings.from_mapping(
            {
                "redis_port": server.port,
                "redis_password": "wrong-password-2",
                "event_batch_size": 1,
                "event_queue_size": 5,
                "event_stats_interval_s": 3600,
            }
        )
    )
    for n in range(50):
        pub.enqueue(event(n))
    wait_for(lambda: pub.counters()["errors"] >= 3)
    lines = list(iter(pub.take_line, None))
    assert len(lines) == 1 and "authentication failed" in lines[0][1]
    assert "wrong-password-2" not in lines[0][1] and "right-password-1" not in lines[0][1]
    assert pub.counters()["dropped"] == 45
    pub.close()
    good = Publisher(settings_for(server, event_batch_size=1))
    listener = ChannelListener(server)
    good.enqueue(event(1))
    wait_for(lambda: listener.events() == [event(1)])
    good.close()
    listener.close()


@pytest.mark.skipif(not redis_server_has_tls(), reason="redis-server was built without TLS")
def test_tls_with_a_private_ca(make_redis: Callable[..., RedisServer], tmp_path) -> None:  # type: ignore[no-untyped-def]
    tls = make_tls_files(tmp_path / "tls")
    server = make_redis(tls=tls)
    listener = ChannelListener(server)
    pub = Publisher(settings_for(server, redis_ssl=True, redis_ssl_ca_file=str(tls.ca), event_batch_size=1))
    pub.enqueue(event(7))
    wait_for(lambda: listener.events() == [event(7)])
    pub.close()
    unverified = Publisher(settings_for(server, redis_ssl=True, event_batch_size=1))  # system CAs only
    unverified.enqueue(event(8))
    wait_for(lambda: unverified.counters()["errors"] >= 1)
    line = unverified.take_line()
    assert line is not None and "certificate verify failed" in line[1].lower()
    assert all(e != event(8) for e in listener.events())
    unverified.close()
    listener.close()
