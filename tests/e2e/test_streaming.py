"""Streamed answers reach the client as they are generated, restored, through the real gateway,
plugin server and Lua restore plugin. No wall-clock assertions: the stub counts the events it has
written, and the test compares that count at the moment the first text reaches the client."""

from __future__ import annotations

from pathlib import Path

import anthropic
import pytest

from aws_masker.tokens import TOKEN_RE

from .stack import running, stub_config

pytestmark = pytest.mark.e2e

MODEL = "claude-sonnet-5"
IDS = [f"i-0{n:016x}" for n in range(1, 9)] + ["10.0.1.100", "arn:aws:iam::123456789012:role/deploy"]
PROMPT = "Check these: " + ", ".join(IDS)
DELAY_MS = "60"


def stream_through(stack_url: str, stats: callable, base: str = "") -> tuple[int, int, str]:  # type: ignore[valid-type]
    """Stream PROMPT; return (events the stub had sent when the first text arrived, events in all,
    the text)."""
    client = anthropic.Anthropic(base_url=stack_url + base, api_key="test-key", max_retries=0)
    before = stats()["stream_events_sent"]
    first_at = None
    pieces = []
    with client.messages.stream(
        model=MODEL,
        max_tokens=500,
        messages=[{"role": "user", "content": PROMPT}],
        extra_headers={"x-stub-event-delay-ms": DELAY_MS},
    ) as stream:
        for piece in stream.text_stream:
            if first_at is None:
                first_at = stats()["stream_events_sent"] - before
            pieces.append(piece)
    total = stats()["stream_events_sent"] - before
    assert first_at is not None
    return first_at, total, "".join(pieces)


def test_sdk_stream_reaches_the_client_as_it_is_generated(tmp_path: Path) -> None:
    with running(tmp_path) as stack:
        first_at, total, text = stream_through(stack.url, stack.stub_stats)
        assert total > 20  # the stub cut every token across deltas
        # the first text arrived while the stub was still generating: not held back to the end
        assert first_at < total // 2, (first_at, total)
        assert all(i in text for i in IDS) and not TOKEN_RE.search(text)
        assert stack.stub_stats()["leaks"] == 0


def test_response_buffering_on_holds_a_small_stream_back(tmp_path: Path) -> None:
    """Kong's default (response_buffering: true) holds an event stream in nginx's proxy buffers:
    why kong.yml turns it off. The gateway honours the route's flag the same way."""
    route = (
        "\n  - name: buffered\n"
        "    url: {stub}/v1/messages\n"
        "    routes:\n"
        "      - name: buffered\n"
        '        paths: ["/buffered/v1/messages"]\n'
        "        strip_path: true\n"
    )
    config = None

    def build(stub_url: str) -> str:
        return stub_config(stub_url, route.replace("{stub}", stub_url))

    with running(tmp_path, config_factory=build) as stack:
        config = stack.config_text
        first_at, total, text = stream_through(stack.url, stack.stub_stats, base="/buffered")
        assert first_at == total  # nothing reached the client before the stream ended (< 8 KB)
        assert all(i in text for i in IDS)
    assert config is not None and "response_buffering" not in config.split("name: buffered")[1]
