"""aws-masker-collect (kong/plugins/aws-masker-collect/) under a real nginx with lua-nginx-module:
what it leaves in kong.ctx.shared, read back the way aws-masker reads it (phases.Collected), is the
request as sent: the raw target, the headers as Kong's get_headers returns them, and the body byte
for byte, read back from nginx's temp file when it spilled there; a body over max_inline_body_bytes
is left out."""

from __future__ import annotations

import http.client
import json

import pytest
from nginx_harness import Nginx

from aws_masker.phases import Collected

TARGET = "/__collect?note=i-0123456789abcdef0&x=%C3%A9&max="


def collect(
    nginx: Nginx, body: bytes, headers: list[tuple[str, str]], target: str = TARGET
) -> Collected | None:
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10)
    try:
        conn.putrequest("POST", target, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    assert response.status == 200, raw[:300]
    return Collected.parse(json.loads(raw))


HEADERS = [
    ("Content-Type", "application/json"),
    ("X-Api-Key", "test-key"),
    ("X-Note", "first"),
    ("x-note", "second"),
    ("Anthropic-Metadata", "incident on i-0123456789abcdef0"),
]


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"m","messages":[{"role":"user","content":"i-0123456789abcdef0"}]}',
        b"",
        bytes(range(256)) * 8,  # not UTF-8: bytes 128-255 cross as two-byte characters
        b"x" * 16_000,  # just under the 16k body buffer
    ],
    ids=["json", "empty", "binary", "near-buffer"],
)
def test_the_request_is_handed_over_whole(nginx: Nginx, body: bytes) -> None:
    collected = collect(nginx, body, HEADERS)
    assert collected is not None
    assert collected.target == TARGET
    assert collected.body == body
    assert collected.headers["content-type"] == "application/json"
    assert collected.headers["x-note"] == ["first", "second"]
    assert collected.headers["anthropic-metadata"] == "incident on i-0123456789abcdef0"
    assert collected.headers["content-length"] == str(len(body))


def test_a_spilled_body_is_read_back_and_a_large_one_left_for_aws_masker(nginx: Nginx) -> None:
    body = bytes(range(256)) * 160  # 40,960 bytes: past client_body_buffer_size 16k, in a file
    spilled = collect(nginx, body, HEADERS)
    assert spilled is not None and spilled.body == body and spilled.headers["content-length"] == "40960"
    over = collect(nginx, body, HEADERS, TARGET + "40000")  # a spilled file over max_inline_body_bytes
    assert over is not None and over.body is None and over.target.endswith("max=40000")
    small = collect(nginx, b"z" * 1000, HEADERS, TARGET + "999")  # in memory, over the limit
    assert small is not None and small.body is None
    none = collect(nginx, b"z" * 10, HEADERS, TARGET + "0")  # 0: no body is handed over
    assert none is not None and none.body is None and none.headers["content-length"] == "10"


def test_more_headers_than_kongs_default_are_handed_over(nginx: Nginx) -> None:
    """get_headers(1000), not Kong's default of 100: aws-masker masks (and counts) all of them."""
    many = [("Content-Type", "application/json"), *((f"x-h{i}", "v") for i in range(150))]
    collected = collect(nginx, b"{}", many)
    assert collected is not None
    assert sum(len(v) if isinstance(v, list) else 1 for v in collected.headers.values()) == 153
    assert collected.headers["x-h149"] == "v"
