"""End to end with real processes: client -> local gateway -> aws-masker plugin server -> Claude stub.

The stub counts every raw AWS identifier it receives; every test checks it saw none."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import pytest

from aws_masker.tokens import TOKEN_RE
from aws_masker_stack.ports import free_port

from .stack import CLI, ROOT, Stack, http, running, stub_config

pytestmark = pytest.mark.e2e

COMPLEX = "Analyze: EC2 i-1234567890abcdef0, S3 my-bucket, RDS prod-db, IP 10.0.1.100"
ORIGINALS = ("i-1234567890abcdef0", "my-bucket", "prod-db", "10.0.1.100")
MODEL = "claude-sonnet-5"


def request(text: str = COMPLEX, **extra: object) -> dict:
    return {"model": MODEL, "max_tokens": 300, "messages": [{"role": "user", "content": text}], **extra}


def sse_text(body: bytes) -> tuple[list[str], str]:
    names, text = [], []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        names.append(lines["event"])
        data = json.loads(lines["data"])
        if data["type"] == "content_block_delta":
            text.append(data["delta"]["text"])
    return names, "".join(text)


def test_complex_request_json(stack: Stack) -> None:
    before = stack.stub_stats()
    status, headers, body = stack.post("/claude-proxy/v1/messages", request())
    assert status == 200, body
    text = json.loads(body)["content"][0]["text"]
    assert all(o in text for o in ORIGINALS) and not TOKEN_RE.search(text)
    seen = stack.stub_last_text()
    assert all(o not in seen for o in ORIGINALS) and len(TOKEN_RE.findall(seen)) == 4
    after = stack.stub_stats()
    assert after["leaks"] == before["leaks"] == 0
    assert after["messages"] == before["messages"] + 1
    # restored as it streams: the length changed, so the restore plugin cleared Content-Length
    assert "Content-Length" not in headers and headers["Transfer-Encoding"] == "chunked"
    assert {"X-Kong-Upstream-Latency", "X-Kong-Proxy-Latency", "X-Kong-Request-Id"} <= set(headers)


def test_complex_request_sse(stack: Stack) -> None:
    status, headers, body = stack.post("/analyze-claude", request(stream=True))
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    names, text = sse_text(body)
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert names.count("content_block_delta") >= 4  # the stub cut every token across deltas
    assert all(o in text for o in ORIGINALS) and not TOKEN_RE.search(text)
    assert stack.stub_stats()["leaks"] == 0


def test_pdk_calls_per_request_are_counted(stack: Stack) -> None:
    """The budget in aws_masker/phases.py: access only (the Lua plugin restores), monitoring off,
    kong.yml as shipped (aws-masker-collect reads the request): 3 calls, with identifiers in the
    body or without (the issue's bound: at most 6 and 4)."""
    status, headers, _ = stack.post("/claude-proxy/v1/messages", request())
    assert status == 200
    record = stack.log_record(headers["X-Kong-Request-Id"])
    assert record["route"] == "claude-proxy"
    assert (int(record["pdk"]), record["phases"]) == (3, "access:3")
    status, headers, _ = stack.post("/claude-proxy/v1/messages", request("nothing to mask here"))
    record = stack.log_record(headers["X-Kong-Request-Id"])
    assert (int(record["pdk"]), record["phases"]) == (3, "access:3")


@pytest.mark.parametrize("base", ["/claude-proxy", ""])
def test_official_anthropic_sdk(stack: Stack, base: str) -> None:
    client = anthropic.Anthropic(base_url=stack.url + base, api_key="test-key", max_retries=0)
    message = client.messages.create(
        model=MODEL, max_tokens=300, messages=[{"role": "user", "content": COMPLEX}]
    )
    assert all(o in message.content[0].text for o in ORIGINALS)
    with client.messages.stream(
        model=MODEL, max_tokens=300, messages=[{"role": "user", "content": COMPLEX}]
    ) as s:
        streamed = "".join(s.text_stream)
        final = s.get_final_message()
    assert all(o in streamed for o in ORIGINALS) and not TOKEN_RE.search(streamed)
    assert final.content[0].text == streamed
    assert stack.stub_stats()["leaks"] == 0


@pytest.mark.parametrize("size", [8 * 1024, 1024 * 1024, 5 * 1024 * 1024])
def test_large_request_bodies_are_masked(stack: Stack, size: int) -> None:
    line = "i-1234567890abcdef0 10.0.1.100 prose prose prose\n"
    text = (line * (size // len(line) + 1))[:size]
    status, _, body = stack.post("/claude-proxy/v1/messages", request(text))
    assert status == 200, body[:300]
    stats = stack.stub_stats()
    assert stats["leaks"] == 0 and stats["last_request_leaks"] == 0
    assert set(TOKEN_RE.findall(stack.stub_last_text())) and "10.0.1.100" not in stack.stub_last_text()


def test_ten_megabyte_response_is_restored(stack: Stack) -> None:
    # 13 MiB of upstream tokens restore to more than 10 MiB of originals
    status, _, body = stack.post("/test/large-response?mb=13", request())
    assert status == 200
    assert len(body) >= 10 * 1024 * 1024
    text = json.loads(body)["content"][0]["text"]
    assert not TOKEN_RE.search(text)
    assert text.count("i-1234567890abcdef0") > 1000
    assert stack.stub_stats()["leaks"] == 0


def test_another_requests_token_gets_no_identifier_back(stack: Stack) -> None:
    stack.post("/claude-proxy/v1/messages", request("secret instance i-0fedcba9876543210"))
    token = TOKEN_RE.search(stack.stub_last_text()).group()
    status, _, body = stack.post("/claude-proxy/v1/messages", request(f"what is {token}?"))
    assert status == 200
    text = json.loads(body)["content"][0]["text"]
    assert token in text and "i-0fedcba9876543210" not in text


def test_credentials_pass_through_and_no_key_is_injected(stack: Stack) -> None:
    before = stack.stub_stats()
    status, _, _ = http(
        "POST",
        stack.url + "/claude-proxy/v1/messages",
        request(),
        {"content-type": "application/json", "anthropic-version": "2023-06-01"},
    )
    assert status == 200
    after = stack.stub_stats()
    assert after["with_api_key"] == before["with_api_key"]  # keyless in, keyless out: no open relay


def test_non_utf8_body_is_refused(stack: Stack) -> None:
    before = stack.stub_stats()["requests"]
    status, _, body = stack.post("/claude-proxy/v1/messages", b'{"x": "10.0.1.100 \xff"}')
    assert status == 400 and json.loads(body)["error"] == "AWS_MASKER_2004"
    assert b"10.0.1.100" not in body
    assert stack.stub_stats()["requests"] == before


FAULTY = """
import sys
from aws_masker import phases
def boom(*args):
    raise RuntimeError("injected failure")
phases.mask_request = boom
from aws_masker.server import main
sys.exit(main())
"""


def test_plugin_exception_gives_503_and_nothing_reaches_the_upstream(tmp_path: Path) -> None:
    script = tmp_path / "faulty_server.py"
    script.write_text(FAULTY)
    with running(tmp_path, start_cmd=f"{sys.executable} {script} --kong-prefix {{prefix}}") as s:
        status, _, body = s.post("/claude-proxy/v1/messages", request())
        assert status == 503
        assert json.loads(body) == {
            "error": "AWS_MASKER_2001",
            "message": "masking failed; the request was not forwarded",
        }
        assert s.stub_stats()["requests"] == 0


GATED = """
import os, sys
if os.path.exists(sys.argv[1]):
    sys.exit(1)  # the test keeps the plugin server down while this file exists
from aws_masker.server import main
sys.exit(main(sys.argv[2:]))
"""


def test_killed_plugin_server_fails_closed_through_the_guard(tmp_path: Path) -> None:
    script, down = tmp_path / "gated_server.py", tmp_path / "down"
    script.write_text(GATED)
    with running(tmp_path, start_cmd=f"{sys.executable} {script} {down} --kong-prefix {{prefix}}") as s:
        assert s.post("/claude-proxy/v1/messages", request())[0] == 200  # instance started
        down.touch()
        os.kill(s.plugin_server_pid(), signal.SIGKILL)
        before = s.stub_stats()["requests"]
        statuses = []
        deadline = time.monotonic() + 3  # Kong respawns at most once a second; keep asking for 3 s
        while time.monotonic() < deadline:
            status, _, body = s.post("/claude-proxy/v1/messages", request())
            statuses.append(status)
            assert status == 503 and json.loads(body)["error"] == "AWS_MASKER_1003", body
        assert len(statuses) >= 3
        assert s.stub_stats()["requests"] == before  # the guard refused every one
        down.unlink()
        deadline = time.monotonic() + 15
        while s.post("/claude-proxy/v1/messages", request())[0] != 200:
            assert time.monotonic() < deadline, "the plugin server did not come back"
            time.sleep(0.2)
        assert s.stub_stats()["leaks"] == 0


def test_schema_violation_fails_at_start(tmp_path: Path) -> None:
    bad = (ROOT / "kong.yml").read_text().replace("mask_ipv6: true", 'mask_ipv6: "yes"')
    (tmp_path / "bad.yml").write_text(bad)
    out = subprocess.run(
        [
            *CLI,
            "gateway",
            "--config",
            str(tmp_path / "bad.yml"),
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--prefix",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "schema violation (config.mask_ipv6: expected a boolean)" in out.stderr


def test_make_run_entry_point_works(tmp_path: Path) -> None:
    """`make run` is `aws-masker up`; --exit-after-demo stops after the demo request."""
    out = subprocess.run(
        [
            *CLI,
            "up",
            "--exit-after-demo",
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--stub-listen",
            f"127.0.0.1:{free_port()}",
            "--subscriber-listen",
            f"127.0.0.1:{free_port()}",
            "--run-dir",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    saw = next(line for line in lines if line.startswith("upstream saw"))
    got = next(line for line in lines if line.startswith("client got back"))
    assert all(o not in saw for o in ORIGINALS) and len(TOKEN_RE.findall(saw)) == 4
    assert "HTTP 200" in got and all(o in got for o in ORIGINALS)
    assert "curl -s http://127.0.0.1:" in out.stdout


@pytest.mark.parametrize(
    ("signum", "signals"),
    [(signal.SIGTERM, 1), (signal.SIGTERM, 2), (signal.SIGINT, 1), (signal.SIGINT, 2)],
    ids=["sigterm", "sigterm-twice", "ctrl-c", "ctrl-c-twice"],
)
def test_make_run_stops_its_stack_on_sigterm(tmp_path: Path, signum: int, signals: int) -> None:
    """`make run` under `timeout` or a supervisor gets SIGTERM (under `timeout 60 make run`, twice: from
    timeout and from make), or Ctrl-C (SIGINT, maybe pressed twice): it exits 0 and takes the gateway,
    the plugin server and the stub with it."""
    listen, stub_listen = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [
            *CLI,
            "up",
            "--no-demo",
            "--listen",
            listen,
            "--stub-listen",
            stub_listen,
            "--subscriber-listen",
            f"127.0.0.1:{free_port()}",
            "--run-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"},
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # until the stack is up
            if "Ctrl-C stops everything" in line:
                break
        for _ in range(signals):
            proc.send_signal(signum)
            time.sleep(0.1)  # the second one arrives while the first one's cleanup runs
        assert proc.wait(timeout=30) == 0
        for address in (listen, stub_listen):
            host, port = address.rsplit(":", 1)
            with pytest.raises(OSError):
                socket.create_connection((host, int(port)), timeout=2).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stub_config_helper_keeps_the_shipped_routes(tmp_path: Path) -> None:
    text = stub_config("http://127.0.0.1:1")
    assert "https://api.anthropic.com" not in text and "claude-proxy" in text and "post-function" in text
