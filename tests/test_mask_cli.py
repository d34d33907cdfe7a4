"""`aws-masker mask`: stdin -> masked stdout, per-category counts on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from aws_masker.tokens import TOKEN_RE

DUMP = json.dumps(
    {
        "Reservations": [
            {
                "OwnerId": "123456789012",
                "Instances": [{"InstanceId": "i-0a1b2c3d4e5f67890", "PrivateIpAddress": "10.0.1.100"}],
            }
        ]
    },
    indent=2,
)


def run(
    *args: str, data: bytes = DUMP.encode(), secret: str | None = "cli-secret"
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AWS_MASKER_TOKEN_SECRET"}
    if secret:
        env["AWS_MASKER_TOKEN_SECRET"] = secret
    return subprocess.run(
        [sys.executable, "-m", "aws_masker.cli", "mask", *args],
        input=data,
        capture_output=True,
        env=env,
        timeout=60,
    )


def test_mask_json_from_stdin() -> None:
    out = run()
    assert out.returncode == 0
    doc = json.loads(out.stdout)  # still valid JSON
    text = out.stdout.decode()
    assert all(v not in text for v in ("123456789012", "i-0a1b2c3d4e5f67890", "10.0.1.100"))
    assert len(TOKEN_RE.findall(text)) == 3 and doc["Reservations"][0]["Instances"][0][
        "InstanceId"
    ].startswith("AWS_EC2_")
    assert (
        out.stderr.decode().strip()
        == "aws-masker: masked 3 identifiers (3 unique): account 1, ec2 1, private_ip 1"
    )


def test_tokens_are_stable_with_a_secret_and_warned_about_without() -> None:
    assert run().stdout == run().stdout
    a, b = run(secret=None), run(secret=None)
    assert a.stdout != b.stdout
    assert b"random per-process secret" in a.stderr


def test_disable_allow_and_text_format() -> None:
    out = run("--disable", "ec2", "--allow", "10.0.1.100", "--format", "text", "-q")
    text = out.stdout.decode()
    assert "i-0a1b2c3d4e5f67890" in text and "10.0.1.100" in text and "123456789012" not in text
    assert out.stderr == b""


def test_bad_input_writes_nothing() -> None:
    out = run(data=b"IP 10.0.1.100 \xff\xfe")
    assert out.returncode == 1 and out.stdout == b""
    assert b"not valid UTF-8" in out.stderr and b"10.0.1.100" not in out.stderr
    out = run("--disable", "nope")
    assert out.returncode == 2 and b"unknown category: nope" in out.stderr


def test_mask_then_unmask_round_trips(tmp_path) -> None:
    token_map = tmp_path / "map.json"
    masked = run("--save-map", str(token_map))
    assert masked.returncode == 0
    assert (token_map.stat().st_mode & 0o777) == 0o600
    tokens = json.loads(token_map.read_text())
    assert set(tokens.values()) >= {"i-0a1b2c3d4e5f67890", "10.0.1.100"}
    answer = json.dumps({"text": "see " + " and ".join(tokens)}).encode()
    head = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":'
    first = next(iter(tokens)).encode()
    sse = (
        head
        + b'{"type":"text_delta","text":"'
        + first[:9]
        + b'"}}\n\n'
        + head
        + b'{"type":"text_delta","text":"'
        + first[9:]
        + b' AWS_EC2_ffffffffffff"}}\n\n'
    )
    for data, expected in ((answer, [*tokens.values()]), (sse, [next(iter(tokens.values()))])):
        out = subprocess.run(
            [sys.executable, "-m", "aws_masker.cli", "unmask", "--map", str(token_map)],
            input=data,
            capture_output=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert all(v in out.stdout.decode() for v in expected)
        assert not any(t in out.stdout.decode() for t in tokens)
    assert b"AWS_EC2_ffffffffffff" in out.stdout  # not ours: untouched


def test_unmask_refuses_a_map_that_is_not_one(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not-a-token": "x"}')
    out = subprocess.run(
        [sys.executable, "-m", "aws_masker.cli", "unmask", "--map", str(bad)],
        input=b"x",
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 1 and b"is not a token map" in out.stderr and out.stdout == b""


def test_mask_changes_nothing_but_the_identifiers() -> None:
    raw = b'{\n  "a": [1, 2.50, 1e3],\n  "OwnerId":   "123456789012", "dup": 1, "dup": 2\n}\n'
    out = run(data=raw)
    assert out.returncode == 0
    token = TOKEN_RE.findall(out.stdout.decode())
    assert len(token) == 1
    assert out.stdout == raw.replace(b"123456789012", token[0].encode())
