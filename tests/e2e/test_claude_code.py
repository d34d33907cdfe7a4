"""The Claude Code CLI, a real client, through the local gateway to the Claude stub, with no network
but loopback (tests/e2e/claude_code.py): its requests (a long system prompt, tool definitions, beta
headers, a stream) reach the stub masked, and what it prints has every original back, from the
stream's deltas (cut across tokens by the stub) to the final result.

Skipped where the CLI (scripts/claude-code.sh) or ``unshare -n`` is missing, unless
AWS_MASKER_REQUIRE_CLAUDE_CODE=1 (CI), which makes that a failure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aws_masker.tokens import TOKEN_RE

from .claude_code import REQUIRE_ENV, can_unshare, find_claude, run_isolated
from .stack import Stack

ORIGINALS = [
    "i-0a1b2c3d4e5f67890",
    "483920175526",
    "10.0.1.100",
    "acme-prod-data",
    "arn:aws:iam::483920175526:role/AppRole",
    "orders-prod-db-1",
]
PROMPT = (
    "Why can EC2 i-0a1b2c3d4e5f67890 (account 483920175526, IP 10.0.1.100) not read "
    "s3://acme-prod-data? Its role is arn:aws:iam::483920175526:role/AppRole. "
    'aws rds describe-db-instances says {"DBInstanceIdentifier": "orders-prod-db-1"}'
)


@pytest.fixture(scope="module")
def claude() -> str:
    binary = find_claude()
    why = "the Claude Code CLI is not installed (scripts/claude-code.sh)" if binary is None else can_unshare()
    if why is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {why}", pytrace=False)
        pytest.skip(why)
    assert binary is not None
    return binary


def cli_env(home: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM")}
    return {
        **keep,
        "HOME": str(home),
        "ANTHROPIC_API_KEY": "test-key",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }


def test_claude_code_streams_through_the_gateway_masked_and_restored(
    claude: str, stack: Stack, tmp_path: Path
) -> None:
    before = stack.stub_stats()
    work = tmp_path / "work"
    work.mkdir()
    args = ["-p", PROMPT, "--output-format", "stream-json", "--verbose", "--include-partial-messages"]
    proc = run_isolated(claude, args, stack.port, work, cli_env(tmp_path / "home"))
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    deltas = [
        e["event"]["delta"].get("text", "")
        for e in events
        if e.get("type") == "stream_event" and e["event"].get("type") == "content_block_delta"
    ]
    (result,) = [e for e in events if e.get("type") == "result"]
    assert result["is_error"] is False
    streamed = "".join(deltas)
    for text in (streamed, result["result"]):
        assert all(original in text for original in ORIGINALS), text
        assert not TOKEN_RE.search(text), text
    assert len(deltas) >= 4  # it streamed: the stub cut its answer, tokens included, into deltas
    after = stack.stub_stats()
    assert after["requests"] > before["requests"] and after["streams"] > before["streams"]
    assert after["leaks"] == before["leaks"]  # the stub saw tokens, never an original
    assert after["tokens_seen"] - before["tokens_seen"] >= len(ORIGINALS)
    logs = "\n".join(stack.gateway.lines)
    assert not any(original in logs for original in ORIGINALS)
