"""The Claude stub upstream (``aws-masker stub``): API shapes, split-token streams, leak counting.

Most tests run the app in-process with aiohttp's ``TestServer``/``TestClient`` inside ``asyncio.run``;
the SDK tests need a blocking client, so they use a stub served from a background thread; one test
runs the real ``aws-masker stub`` command in a subprocess.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.tokens import TOKEN_RE

ROOT = Path(__file__).resolve().parents[1]
KONG_DIR = ROOT / "kong"
if importlib.util.find_spec("aws_masker_stack") is None:  # editable install predating the package
    sys.path.insert(0, str(KONG_DIR))

from aws_masker_stack import stub  # noqa: E402
from aws_masker_stack.ports import free_port  # noqa: E402

T = TypeVar("T")
MODEL = "claude-stub-test-model"
RAW_EC2 = "i-0123456789abcdef0"
RAW_IP = "10.0.1.100"
RAW_IDS = (RAW_EC2, RAW_IP)
MASKER = Masker(MaskerConfig(token_secret="test-stub"))
MASKED, _RESULT = MASKER.mask_text(f"check {RAW_EC2} at {RAW_IP} in vpc-0abc1234 and again {RAW_EC2}")
TOKENS = list(dict.fromkeys(TOKEN_RE.findall(MASKED)))  # 3 distinct tokens, first-appearance order
EXPECTED_TEXT = f"I looked at {TOKENS[0]}, {TOKENS[1]} and {TOKENS[2]}: they look fine."


def request_body(content: Any = MASKED, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": content}], **extra}


def in_process(scenario: Callable[[TestClient], Awaitable[T]], app: web.Application | None = None) -> T:
    async def main() -> T:
        async with TestClient(TestServer(app or stub.build_app())) as client:
            return await scenario(client)

    return asyncio.run(main())


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        events.append((lines[0][len("event: ") :], json.loads(lines[1][len("data: ") :])))
    return events


def cut_tokens(deltas: list[str]) -> dict[str, list[int]]:
    """For each token of the joined text, the offsets inside it where a delta boundary falls."""
    bounds, pos = set(), 0
    for piece in deltas:
        pos += len(piece)
        bounds.add(pos)
    joined = "".join(deltas)
    return {
        m.group(0): [b - m.start() for b in sorted(bounds) if m.start() < b < m.end()]
        for m in TOKEN_RE.finditer(joined)
    }


# ---------------------------------------------------------------------------------------- Messages API


def test_non_stream_shape_quotes_every_token_once_in_order() -> None:
    async def scenario(client: TestClient) -> None:
        resp = await client.post("/v1/messages", json=request_body())
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        body = await resp.json()
        assert set(body) == {
            "id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage",
        }  # fmt: skip
        assert body["id"].startswith("msg_stub_") and len(body["id"]) > len("msg_stub_")
        assert (body["type"], body["role"], body["model"]) == ("message", "assistant", MODEL)
        assert body["content"] == [{"type": "text", "text": EXPECTED_TEXT}]
        assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
        assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0

    in_process(scenario)


def test_tokens_are_collected_from_every_string_of_the_request() -> None:
    doc = request_body(
        [{"type": "text", "text": f"first {TOKENS[2]}"}, {"type": "text", "text": TOKENS[0]}],
        system=f"context {TOKENS[1]} and {TOKENS[2]}",
    )

    async def scenario(client: TestClient) -> str:
        resp = await client.post("/v1/messages", json=doc)
        return (await resp.json())["content"][0]["text"]

    # document order: model, max_tokens, messages (..TOKENS[2], TOKENS[0]), system (TOKENS[1])
    assert in_process(scenario) == f"I looked at {TOKENS[2]}, {TOKENS[0]} and {TOKENS[1]}: they look fine."


def test_stream_has_anthropics_exact_event_sequence_and_cuts_tokens() -> None:
    async def scenario(client: TestClient) -> tuple[str, str]:
        resp = await client.post("/v1/messages", json=request_body(stream=True))
        assert resp.status == 200
        return resp.headers["Content-Type"], await resp.text()

    content_type, text = in_process(scenario)
    assert content_type.startswith("text/event-stream")
    events = parse_sse(text)
    names = [name for name, _ in events]
    deltas = names.count("content_block_delta")
    assert deltas >= 4
    assert names == [
        "message_start", "content_block_start", "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    for name, data in events:
        assert data["type"] == name
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_stub_")
    assert (start["type"], start["role"], start["model"], start["content"]) == (
        "message", "assistant", MODEL, [],
    )  # fmt: skip
    assert start["stop_reason"] is None and start["stop_sequence"] is None
    assert set(start["usage"]) == {"input_tokens", "output_tokens"}
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert events[2][1] == {"type": "ping"}
    pieces = []
    for _, data in events[3 : 3 + deltas]:
        assert data["index"] == 0 and set(data["delta"]) == {"type", "text"}
        assert data["delta"]["type"] == "text_delta"
        pieces.append(data["delta"]["text"])
    assert all(pieces)
    assert "".join(pieces) == EXPECTED_TEXT
    cuts = cut_tokens(pieces)
    assert set(cuts) == set(TOKENS) and all(cuts.values()), "every token is cut across deltas"
    assert len({tuple(offsets) for offsets in cuts.values()}) > 1, "cut positions vary"
    assert events[-3][1] == {"type": "content_block_stop", "index": 0}
    message_delta = events[-2][1]
    assert message_delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert set(message_delta["usage"]) == {"output_tokens"} and message_delta["usage"]["output_tokens"] > 0
    assert events[-1][1] == {"type": "message_stop"}
    assert text.endswith("\n\n") and ": " in text and '", "' not in text  # compact JSON


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(TOKENS), st.text(alphabet="ab _:,.-", max_size=12)), max_size=10))
def test_split_deltas_round_trips_and_cuts_every_token(parts: list[str]) -> None:
    text = "".join(parts)
    pieces = stub.split_deltas(text)
    assert "".join(pieces) == text
    assert all(pieces)
    assert all(cut_tokens(pieces).values())


def test_echo_mode_returns_the_last_user_messages_text() -> None:
    doc = {
        "model": MODEL,
        "max_tokens": 10,
        "metadata": {"user_id": "echo"},
        "messages": [
            {"role": "user", "content": "older question"},
            {"role": "assistant", "content": "older answer"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"part one {TOKENS[0]} "},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                    },
                    {"type": "text", "text": "part two"},
                ],
            },
        ],
    }

    async def scenario(client: TestClient) -> tuple[str, str]:
        plain = await (await client.post("/v1/messages", json=doc)).json()
        streamed = await (await client.post("/v1/messages", json={**doc, "stream": True})).text()
        joined = "".join(
            data["delta"]["text"] for name, data in parse_sse(streamed) if name == "content_block_delta"
        )
        return plain["content"][0]["text"], joined

    expected = f"part one {TOKENS[0]} part two"
    assert in_process(scenario) == (expected, expected)


# --------------------------------------------------------------------------------------- leak counting


def test_raw_identifiers_count_as_leaks_and_tokens_do_not(caplog: pytest.LogCaptureFixture) -> None:
    raw = request_body(f"instance {RAW_EC2} at {RAW_IP}")

    async def scenario(client: TestClient) -> list[dict[str, Any]]:
        snapshots = []
        bodies = []
        resp = await client.post("/v1/messages", json=request_body())  # tokens only
        bodies.append(await resp.text())
        snapshots.append(await (await client.get("/stats")).json())
        resp = await client.post("/v1/messages", json=raw)
        bodies.append(await resp.text())
        snapshots.append(await (await client.get("/stats")).json())
        resp = await client.post("/v1/messages", json={**raw, "stream": True})
        bodies.append(await resp.text())
        resp = await client.post("/v1/messages", json={**raw, "max_tokens": "many"})  # invalid, still a leak
        assert resp.status == 400
        bodies.append(await resp.text())
        snapshots.append(await (await client.get("/stats")).json())
        for body in bodies + [json.dumps(s) for s in snapshots]:
            assert not any(ident in body for ident in RAW_IDS)
        return snapshots

    with caplog.at_level(logging.INFO, logger=stub.__name__):
        clean, one, three = in_process(scenario)
    assert caplog.records, "one log line per request"
    assert not any(ident in caplog.text for ident in RAW_IDS)
    assert "POST /v1/messages 200" in caplog.text and "POST /v1/messages 400" in caplog.text
    assert clean["leaks"] == 0 and clean["last_request_leaks"] == 0 and clean["leaks_by_category"] == {}
    assert clean["tokens_seen"] == 4  # MASKED holds four token occurrences (one repeated)
    assert one["leaks"] == 2 and one["last_request_leaks"] == 2
    assert one["leaks_by_category"] == {"ec2": 1, "private_ip": 1}
    assert three["leaks"] == 6 and three["leaks_by_category"] == {"ec2": 3, "private_ip": 3}
    assert (three["requests"], three["messages"], three["streams"]) == (4, 3, 1)


def test_non_json_bodies_are_scanned_as_text() -> None:
    async def scenario(client: TestClient) -> dict[str, Any]:
        resp = await client.post("/v1/messages", data=f"not json {RAW_EC2}".encode())
        assert resp.status == 400
        return await (await client.get("/stats")).json()

    stats = in_process(scenario)
    assert stats["leaks"] == 1 and stats["leaks_by_category"] == {"ec2": 1}


def test_opaque_fields_are_not_scanned() -> None:
    doc = request_body(
        [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": RAW_IP}}]
    )

    async def scenario(client: TestClient) -> dict[str, Any]:
        await client.post("/v1/messages", json={**doc, "model": RAW_EC2})
        return await (await client.get("/stats")).json()

    assert in_process(scenario)["leaks"] == 0


def test_header_presence_is_counted_and_stats_reset() -> None:
    async def scenario(client: TestClient) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        headers = {"x-api-key": "secret-key", "anthropic-version": "2023-06-01"}
        await client.post("/v1/messages", json=request_body(f"{RAW_EC2}"), headers=headers)
        await client.post("/v1/messages", json=request_body(), headers={"authorization": "Bearer t"})
        await client.post("/v1/messages", json=request_body())
        before = await (await client.get("/stats")).json()
        reset = await client.post("/stats/reset")
        assert reset.status == 200
        after = await (await client.get("/stats")).json()
        return before, await reset.json(), after

    before, reset, after = in_process(scenario)
    assert "secret-key" not in json.dumps(before)
    assert before["with_api_key"] == 2 and before["with_anthropic_version"] == 1
    assert before["requests"] == 3 and before["leaks"] == 1
    zero = {
        "requests": 0, "messages": 0, "streams": 0, "leaks": 0, "leaks_by_category": {},
        "last_request_leaks": 0, "with_api_key": 0, "with_anthropic_version": 0, "tokens_seen": 0,
        "stream_events_sent": 0,
    }  # fmt: skip
    assert set(before) == set(zero)
    assert reset == zero and after == zero


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json " + RAW_EC2.encode(), "JSON"),
        (b"", "JSON"),
        (json.dumps([request_body()]).encode(), "object"),
        (json.dumps({"max_tokens": 5, "messages": [{"role": "user", "content": RAW_IP}]}).encode(), "model"),
        (json.dumps({**request_body(RAW_IP), "model": 7}).encode(), "model"),
        (json.dumps({**request_body(RAW_IP), "max_tokens": "5"}).encode(), "max_tokens"),
        (json.dumps({**request_body(RAW_IP), "max_tokens": True}).encode(), "max_tokens"),
        (json.dumps({**request_body(RAW_IP), "max_tokens": 0}).encode(), "max_tokens"),
        (json.dumps({**request_body(RAW_IP), "messages": []}).encode(), "messages"),
        (json.dumps({**request_body(RAW_IP), "messages": {"role": "user"}}).encode(), "messages"),
    ],
)
def test_invalid_requests_get_anthropic_400s_without_echo(body: bytes, field: str) -> None:
    async def scenario(client: TestClient) -> tuple[int, str]:
        resp = await client.post("/v1/messages", data=body, headers={"Content-Type": "application/json"})
        return resp.status, await resp.text()

    status, text = in_process(scenario)
    assert status == 400
    error = json.loads(text)
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert field in error["error"]["message"]
    assert not any(ident in text for ident in RAW_IDS)


def test_unknown_routes_get_error_shape_and_health_is_ok(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(client: TestClient) -> tuple[int, dict[str, Any], int, dict[str, Any]]:
        missing = await client.get(f"/v1/instances/{RAW_EC2}")
        health = await client.get("/health")
        return missing.status, await missing.json(), health.status, await health.json()

    with caplog.at_level(logging.INFO, logger=stub.__name__):
        status, error, health_status, health = in_process(scenario)
    assert status == 404 and error["type"] == "error" and error["error"]["type"] == "not_found_error"
    assert (health_status, health) == (200, {"status": "ok"})
    assert RAW_EC2 not in caplog.text and "GET /health 200" in caplog.text


# -------------------------------------------------------------------------------------- large response


def test_large_response_is_chunked_and_full_of_tokens() -> None:
    async def scenario(client: TestClient) -> tuple[Any, bytes, dict[str, Any]]:
        resp = await client.post("/test/large-response", json=request_body())
        assert resp.status == 200
        body = await resp.read()
        return resp.headers, body, await (await client.get("/stats")).json()

    headers, body, stats = in_process(scenario)
    assert headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in headers
    assert headers["Content-Type"].startswith("application/json")
    assert len(body) >= 10 * 1024 * 1024
    doc = json.loads(body)
    assert (doc["type"], doc["role"], doc["model"], doc["stop_reason"]) == (
        "message",
        "assistant",
        MODEL,
        "end_turn",
    )
    text = doc["content"][0]["text"]
    found = TOKEN_RE.findall(text)
    assert set(found) == set(TOKENS) and len(found) > 100_000
    assert stats["requests"] == 1 and stats["tokens_seen"] == 4


def test_large_response_size_is_configurable_and_tokenless_without_tokens() -> None:
    async def scenario(client: TestClient) -> tuple[bytes, list[int]]:
        resp = await client.post("/test/large-response?mb=0.25", json=request_body("nothing here"))
        body = await resp.read()
        bad = [
            (await client.post(f"/test/large-response?mb={mb}", json=request_body())).status
            for mb in ("0", "51", "lots")
        ]
        return body, bad

    body, bad = in_process(scenario)
    assert 0.25 * 1024 * 1024 <= len(body) < 0.3 * 1024 * 1024
    assert TOKEN_RE.search(json.loads(body)["content"][0]["text"]) is None
    assert bad == [400, 400, 400]


# -------------------------------------------------------------------------------------- official SDK


@pytest.fixture(scope="module")
def threaded_stub() -> Iterator[tuple[str, stub.StubState]]:
    """The stub on a free loopback port, served from a background thread's event loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    state = stub.StubState()

    async def start() -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(stub.build_app(state), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_official_sdk_parses_json_and_stream(threaded_stub: tuple[str, stub.StubState]) -> None:
    base_url, state = threaded_stub
    state.reset()
    client = anthropic.Anthropic(base_url=base_url, api_key="x", max_retries=0, timeout=10)
    messages = [{"role": "user", "content": MASKED}]

    message = client.messages.create(model=MODEL, max_tokens=64, messages=messages)  # type: ignore[arg-type]
    assert message.type == "message" and message.role == "assistant" and message.model == MODEL
    assert message.stop_reason == "end_turn" and message.content[0].type == "text"
    assert message.content[0].text == EXPECTED_TEXT
    assert message.usage.output_tokens > 0

    with client.messages.stream(model=MODEL, max_tokens=64, messages=messages) as stream:  # type: ignore[arg-type]
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == EXPECTED_TEXT
    assert final.content[0].text == EXPECTED_TEXT  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0

    stats = state.snapshot()
    assert (stats["requests"], stats["messages"], stats["streams"]) == (2, 2, 1)
    assert stats["with_api_key"] == 2 and stats["with_anthropic_version"] == 2 and stats["leaks"] == 0


# ----------------------------------------------------------------------------------------- subprocess


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no ready line in time"
    return proc.stdout.readline().rstrip("\n")


def test_command_prints_ready_line_serves_and_stops_on_sigterm() -> None:
    port = free_port()
    script = Path(sys.executable).with_name("aws-masker")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(KONG_DIR), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.Popen(
        [str(script), "stub", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert read_line(proc, 10) == f"claude stub listening on http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            assert json.load(resp) == {"status": "ok"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read() == ""  # exactly one line on stdout
        assert "GET /health 200" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stream_pacing_header_is_checked_and_counted() -> None:
    async def scenario(client: TestClient) -> tuple[int, int, int]:
        bad = await client.post(
            "/v1/messages", json=request_body(stream=True), headers={"x-stub-event-delay-ms": "fast"}
        )
        ok = await client.post(
            "/v1/messages", json=request_body(stream=True), headers={"x-stub-event-delay-ms": "1"}
        )
        events = (await ok.read()).count(b"\n\n")
        sent = (await (await client.get("/stats")).json())["stream_events_sent"]
        return bad.status, events, sent

    bad, events, sent = in_process(scenario)
    assert bad == 400 and events > 5 and sent == events
