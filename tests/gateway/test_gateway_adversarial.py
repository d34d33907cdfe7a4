"""A hostile or careless client through the local gateway and the real aws-masker plugin server (the
main cases of tests/test_body_adversarial.py): each request is either refused with its documented
code and the upstream sees nothing, or the upstream sees no original in any decoded form."""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import Iterator

import pytest
from gateway_harness import AWS_MASKER_ENV, GatewayHarness, kong_yml, route
from leaks import find_leaks

pytestmark = pytest.mark.e2e

MASKER = '{name: aws-masker, config: {token_secret: "gateway-adversarial-secret-0123"}}'
RESTORE = "{name: aws-masker-restore}"
JSON_ANSWER = {"X-Test-Content-Type": "application/json", "Content-Type": "application/json"}

ACCOUNT = "483920175526"
RDS = "orders-prod-db-1"
SECRET_KEY = "Zx9kQm2Lr7Vt4Wp8Yb3Nc6Hd1Jf5Gs0Ae2Ku7Tiq"
EC2 = "i-0123456789abcdef0"
ORIGINALS = (ACCOUNT, RDS, SECRET_KEY, EC2)
RECORD = json.dumps(
    {"OwnerId": ACCOUNT, "DBInstanceIdentifier": RDS, "SecretAccessKey": SECRET_KEY, "Id": EC2}
)
TEXT = f"OwnerId: {ACCOUNT}\nDBInstanceIdentifier: {RDS}\nSecretAccessKey: {SECRET_KEY}\ninstance {EC2}\n"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def gw() -> Iterator[GatewayHarness]:
    harness = GatewayHarness(
        kong_yml(route("m", "/v1/messages", MASKER, RESTORE, extra="response_buffering: false")),
        env=AWS_MASKER_ENV,
    )
    try:
        yield harness
    finally:
        harness.stop()


def conversation(*messages: dict, **extra: object) -> bytes:
    return json.dumps({"model": "claude-x", "max_tokens": 10, "messages": list(messages), **extra}).encode()


def user(*content: object) -> dict:
    return {"role": "user", "content": list(content)}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def image(media: str, data: bytes) -> dict:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media, "data": base64.b64encode(data).decode()},
    }


def nested(levels: int) -> str:
    inner = RECORD
    for _ in range(levels):
        inner = json.dumps({"message": inner})
    return inner


def chained(levels: int) -> str:
    r"""``{"OwnerId": "…"}`` with each quote escaped ``levels`` deep at linear size (``\u005c`` decodes to
    the backslash of the next level's escape)."""
    quote = "\\" + "u005c" * (levels - 1) + '"'
    return f"{{{quote}OwnerId{quote}: {quote}{ACCOUNT}{quote}}}"


def fullwidth(value: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in value)


MASKED = {
    "escaped 10 levels deep": conversation(user(text(nested(10)))),
    "escaped 16 levels deep at linear size": conversation(user(text(chained(16)))),
    "model": conversation(user(text("hi")), model=f"claude-{EC2}"),
    "consecutive user turns": conversation(
        {"role": "user", "content": f"instance {EC2[:9]}"}, {"role": "user", "content": f"{EC2[9:]} down"}
    ),
    "run-on into the next block": conversation(user(text(f"instance {EC2}"), text("1 more"))),
    "echo through escapes and percent-encoding": conversation(
        user(text(f"DBInstanceIdentifier: {RDS}\n\nlater orders\\u002dprod-db-1 and orders%2Dprod-db-1"))
    ),
    "unicode look-alikes": conversation(
        user(text(f"instance {fullwidth(EC2)}, {EC2[:8]}\u200b{EC2[8:]}, OwnerId\u2236 {ACCOUNT}"))
    ),
    "percent-encoded arn": conversation(user(text(f"x arn%3Aaws%3Aiam%3A%3A{ACCOUNT}%3Arole%2FAdmin"))),
}
REFUSED = {
    "escaped past the bound": (conversation(user(text(chained(40)))), 400, "AWS_MASKER_2004"),
    "text sent as a png": (
        conversation(user(image("image/png", TEXT.encode()), text("what is it?"))),
        400,
        "AWS_MASKER_2011",
    ),
    "text after a png header": (
        conversation(user(image("image/png", PNG + TEXT.encode()))),
        400,
        "AWS_MASKER_2011",
    ),
    "unknown media type": (conversation(user(image("image/x-text", TEXT.encode()))), 400, "AWS_MASKER_2011"),
}


def send(gw: GatewayHarness, body: bytes) -> tuple[int, bytes, int]:
    before = len(gw.upstream.requests)
    res = gw.request("POST", "/v1/messages", body, JSON_ANSWER)
    return res.status, res.body, before


def leaked(gw: GatewayHarness, before: int) -> list[str]:
    blobs = {f"upstream request {i}": r.body for i, r in enumerate(gw.upstream.requests[before:])}
    return sorted({leak.where + ": " + leak.form for leak in find_leaks(ORIGINALS, blobs)})


@pytest.mark.parametrize("name", sorted(MASKED))
def test_masked_through_the_gateway(gw: GatewayHarness, name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    status, _, before = send(gw, MASKED[name])
    assert status == 200, name
    assert len(gw.upstream.requests) == before + 1
    assert leaked(gw, before) == [], name
    assert not [o for o in ORIGINALS if o in caplog.text], name


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_through_the_gateway(gw: GatewayHarness, name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body, status_wanted, code = REFUSED[name]
    status, answer, before = send(gw, body)
    assert (status, json.loads(answer)["error"]) == (status_wanted, code), name
    assert len(gw.upstream.requests) == before, name
    assert not [o for o in ORIGINALS if o in caplog.text or o in answer.decode()], name


ARN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
MALFORMED = {
    "header line without a colon": f"role {ARN}\r\n",
    "bad header name": f"X-Note {ARN}: 1\r\n",
    "space in the target": None,
    "header line too long": f"X-Note: {ARN} {'x' * 9000}\r\n",
    "control character in a value": f"X-Note: {ARN}\x01\r\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_request_the_parser_refuses_gets_kongs_error_page(gw: GatewayHarness, name: str) -> None:
    """nginx answers an unparsable request with Kong's error page; aiohttp's own page quoted the
    offending line, so an ARN in a malformed header went back to the client (a fuzz find)."""
    extra = MALFORMED[name]
    target = "/v1/messages" if extra is not None else f"/v1/messages?note={ARN} x"
    body = conversation(user(text("hello")))
    head = (
        f"POST {target} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n{extra or ''}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    before = len(gw.upstream.requests)
    with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1") + body)
        answer = b""
        while chunk := sock.recv(65536):  # the error closes the connection: read until it does
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    headers, _, page = rest.partition(b"\r\n\r\n")
    assert int(status_line.split()[1]) == 400, status_line
    assert b"application/json" in headers.lower()
    assert json.loads(page)["message"] == "Bad request"
    assert ACCOUNT.encode() not in answer and b"Admin" not in answer
    assert len(gw.upstream.requests) == before
