"""Issue 10, through the real gateway and plugin server: identifiers in the query, the path and the
headers, other body formats, compressed bodies, the logs, and the gateway's request-target handling.

A recording upstream keeps every byte it is sent; each test searches it (and the gateway's log,
which carries the plugin server's output at debug level) in raw, URL-decoded and decompressed forms.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import socket
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, unquote_plus

import brotli
import pytest

from aws_masker.tokens import TOKEN_RE

from .stack import ROOT, Stack, plugin_config, running

pytestmark = pytest.mark.e2e

EC2 = "i-0123456789abcdef0"
ACCOUNT = "483920175526"
PRIVATE_IP = "10.0.1.100"
ORIGINALS = (EC2, ACCOUNT, PRIVATE_IP)
HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "test-key"}


class Recorder:
    """A loopback upstream that answers a small Messages response and keeps every request it got."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []  # request line + headers + body, as received
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                lines = [self.requestline, *(f"{k}: {v}" for k, v in self.headers.items())]
                recorder.seen.append(
                    "\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n\r\n" + body
                )
                answer = json.dumps({"type": "message", "content": [{"type": "text", "text": "ok"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST

            def log_message(self, format: str, *args: object) -> None:
                pass

        http.client._MAXHEADERS = 1000  # http.server answers 431 past 100 headers; Kong's upstream would not
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def decoded_forms(data: bytes) -> list[str]:
    """``data`` as text, URL-decoded, and decompressed where it decompresses."""
    forms = [data]
    for decompress in (
        gzip.decompress,
        zlib.decompress,
        lambda b: zlib.decompress(b, -15),
        brotli.decompress,
    ):
        with contextlib.suppress(Exception):
            forms.append(decompress(data))
    texts = [f.decode("utf-8", "replace") for f in forms]
    return texts + [unquote(t) for t in texts] + [unquote_plus(t) for t in texts]


def leaks(data: bytes | str) -> list[str]:
    raw = data.encode() if isinstance(data, str) else data
    return sorted({o for text in decoded_forms(raw) for o in ORIGINALS if o in text})


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, recorder: Recorder) -> Iterator[Stack]:
    def config(_stub_url: str) -> str:
        text = (ROOT / "kong.yml").read_text().replace("https://api.anthropic.com", recorder.url)
        text = plugin_config(text, enable_event_monitoring=False)
        dead = (
            "\n  - name: dead\n    url: http://127.0.0.1:1\n    routes:\n"
            '      - name: dead\n        paths: ["/dead/"]\n        strip_path: false\n'
        )
        return text.replace("\nplugins:\n", dead + "\nplugins:\n", 1)

    s = Stack(Path(tmp_path_factory.mktemp("channels")), config_factory=config, log_level="debug")
    try:
        yield s
    finally:
        s.stop()


def send(
    gw: Stack, target: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", int(gw.url.rsplit(":", 1)[1]), timeout=60)
    try:
        conn.putrequest("POST", target, skip_accept_encoding=True)
        all_headers = {**HEADERS, **(headers or {}), "Content-Length": str(len(body))}
        for name, value in all_headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        res = conn.getresponse()
        return res.status, dict(res.getheaders()), res.read()
    finally:
        conn.close()


def raw_exchange(gw: Stack, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", int(gw.url.rsplit(":", 1)[1])), timeout=60) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def messages(text: str) -> bytes:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": text}]}
    return json.dumps(body).encode()


PROMPT = f"instance {EC2} in account {ACCOUNT} at {PRIVATE_IP}"


def test_query_values_and_custom_headers_are_masked(gw: Stack, recorder: Recorder) -> None:
    """Leak 7: ``?note=…``, ``x-note``, ``anthropic-metadata``: masked with the body's tokens."""
    before = len(recorder.seen)
    target = f"/v1/messages?note={EC2}&who=account%20{ACCOUNT}&ip={PRIVATE_IP.replace('.', '%2E')}"
    headers = {"x-note": f"see {EC2}", "anthropic-metadata": json.dumps({"user_id": f"account {ACCOUNT}"})}
    status, _, body = send(gw, target, messages(PROMPT), headers)
    assert status == 200, body
    assert len(recorder.seen) == before + 1
    sent = recorder.seen[-1]
    assert leaks(sent) == []
    head = sent.split(b"\r\n\r\n", 1)[0].decode()
    assert "x-api-key: test-key" in head and "anthropic-version: 2023-06-01" in head
    assert TOKEN_RE.search(head.split("\r\n", 1)[0])  # the request line carries tokens
    assert TOKEN_RE.search(next(line for line in head.split("\r\n") if line.lower().startswith("x-note")))


@pytest.mark.parametrize(
    "target", [f"/v1/messages/{EC2}", "/v1/i%2D0123456789abcdef0", f"/v1/messages?x=1#{EC2}"]
)
def test_an_identifier_in_the_path_is_refused(gw: Stack, recorder: Recorder, target: str) -> None:
    """Kong copies the path into X-Forwarded-Path before any plugin runs: refused, never forwarded."""
    before = len(recorder.seen)
    status, _, body = send(gw, target, messages("hello"))
    if "#" in target:  # a fragment after the query belongs to its last argument: masked
        assert status == 200 and leaks(recorder.seen[-1]) == []
        return
    assert status == 400 and json.loads(body)["error"] == "AWS_MASKER_2009"
    assert len(recorder.seen) == before and leaks(body) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"x-forwarded-for": EC2},
        {"x-forwarded-for": f"{PRIVATE_IP}, arn:aws:iam::{ACCOUNT}:role/admin"},
        {"via": f"1.1 {EC2}"},
    ],
)
def test_an_identifier_in_a_passed_on_proxy_header_is_refused(
    gw: Stack, recorder: Recorder, headers: dict[str, str]
) -> None:
    """Kong sends the client's X-Forwarded-For and Via on with its own hop appended, worked out
    before any plugin runs: an identifier there cannot be masked, so the request is refused."""
    before = len(recorder.seen)
    status, _, body = send(gw, "/v1/messages", messages(PROMPT), headers)
    assert status == 400 and json.loads(body)["error"] == "AWS_MASKER_2009"
    assert len(recorder.seen) == before and leaks(body) == []


def test_addresses_in_proxy_headers_pass(gw: Stack, recorder: Recorder) -> None:
    """What X-Forwarded-For and Via are for, a load balancer's or proxy's addresses, passes."""
    chain = f"{PRIVATE_IP}, 192.168.7.8"
    status, _, body = send(gw, "/v1/messages", messages("hello"), {"x-forwarded-for": chain})
    assert status == 200, body
    head = recorder.seen[-1].split(b"\r\n\r\n", 1)[0].decode()
    assert f"X-Forwarded-For: {chain}, 127.0.0.1" in head


def test_form_bodies_are_refused(gw: Stack, recorder: Recorder) -> None:
    """Leak 9: a form-urlencoded body with percent-encoded identifiers never passes."""
    before = len(recorder.seen)
    form = f"prompt=instance+i%2D0123456789abcdef0+account+{ACCOUNT}".encode()
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        status, _, body = send(gw, "/v1/messages", form, {"content-type": content_type})
        assert status == 415 and json.loads(body)["error"] == "AWS_MASKER_2007"
    assert len(recorder.seen) == before


def _stored_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(level=0, wbits=-15)  # stored blocks: the originals stay readable
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("coding", "pack"),
    [("gzip", gzip.compress), ("deflate", _stored_deflate), ("br", brotli.compress)],
)
def test_compressed_bodies_are_decoded_masked_and_sent_plain(
    gw: Stack, recorder: Recorder, coding: str, pack: object
) -> None:
    """Leak 11: the gateway hands the plugin the compressed bytes, as Kong does."""
    raw = messages(PROMPT)
    status, _, body = send(gw, "/v1/messages", pack(raw), {"content-encoding": coding})  # type: ignore[operator]
    assert status == 200, body
    sent = recorder.seen[-1]
    assert leaks(sent) == []
    head, forwarded = sent.split(b"\r\n\r\n", 1)
    assert b"content-encoding" not in head.lower()
    assert len(TOKEN_RE.findall(json.loads(forwarded)["messages"][0]["content"])) == 3


def test_decompression_bombs_and_unknown_codings_are_refused(gw: Stack, recorder: Recorder) -> None:
    before = len(recorder.seen)
    bomb = gzip.compress(messages("0" * (11 * 1024 * 1024)))  # 11 MB decoded > max_body_size (10 MB)
    status, _, body = send(gw, "/v1/messages", bomb, {"content-encoding": "gzip"})
    assert status == 413 and json.loads(body)["error"] == "AWS_MASKER_2005"
    for coding in ("zstd", "gzip, br"):
        status, _, body = send(gw, "/v1/messages", b"\x28\xb5\x2f\xfd", {"content-encoding": coding})
        assert status == 415 and json.loads(body)["error"] == "AWS_MASKER_2008"
    assert len(recorder.seen) == before


def test_a_chunked_body_over_max_body_size_is_413(gw: Stack, recorder: Recorder) -> None:
    """Bug: an 11 MB chunked body (no Content-Length) got 500 from the nil raw body."""
    before = len(recorder.seen)
    conn = http.client.HTTPConnection("127.0.0.1", int(gw.url.rsplit(":", 1)[1]), timeout=120)
    piece = b"x" * (1024 * 1024)
    conn.request("POST", "/v1/messages", body=iter([piece] * 11), headers=HEADERS, encode_chunked=True)
    res = conn.getresponse()
    body = res.read()
    conn.close()
    assert res.status == 413 and json.loads(body)["error"] == "AWS_MASKER_2005"
    assert len(recorder.seen) == before


def test_absolute_form_targets_are_routed_by_their_path(gw: Stack, recorder: Recorder) -> None:
    body = messages("hello")
    reply = raw_exchange(
        gw,
        f"POST {gw.url}/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body,
    )
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert recorder.seen[-1].startswith(b"POST /v1/messages HTTP/1.1")


def test_a_fragment_is_not_forwarded_as_part_of_the_path(gw: Stack, recorder: Recorder) -> None:
    status, _, _ = send(gw, "/v1/messages#part", messages("hello"))
    assert status == 200
    request_line = recorder.seen[-1].split(b"\r\n", 1)[0]
    assert request_line == b"POST /v1/messages HTTP/1.1"


def test_no_log_line_carries_anything_of_a_request(gw: Stack) -> None:
    """Leak 10: upstream errors, refusals, HTTP parser errors and masked requests, at debug level."""
    target = f"/v1/messages?note={EC2}&ip={PRIVATE_IP}"
    send(gw, target, messages(PROMPT), {"x-note": f"see {EC2}"})
    send(gw, f"/dead/{EC2}?account={ACCOUNT}", messages(PROMPT))  # refused: path
    send(gw, f"/dead/messages?account={ACCOUNT}", messages(PROMPT))  # upstream connect error: 502
    send(gw, "/v1/messages", b"\xff" + PROMPT.encode())  # 400 non-UTF-8
    send(gw, f"/v1/{EC2}", f"a={ACCOUNT}".encode(), {"content-type": "application/x-www-form-urlencoded"})
    # HTTP parser errors: a bad header character and a bad request line, each quoting an identifier
    raw_exchange(gw, f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-note: {EC2}\x01\r\n\r\n".encode())
    raw_exchange(gw, f"POST /v1/messages?{ACCOUNT} HTTP/1.1 {PRIVATE_IP}\r\nHost: x\r\n\r\n".encode())
    raw_exchange(gw, f"POST /v1/{EC2}\x00 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status, _, _ = send(gw, "/v1/messages", messages("hello"))  # the gateway still serves
    assert status == 200
    log = "\n".join(gw.gateway.lines)
    assert "upstream error" in log and "Error handling request" in log  # the lines exist...
    assert leaks(log) == []  # ...and carry nothing of the requests


def test_a_header_past_the_hundredth_is_masked_too(gw: Stack, recorder: Recorder) -> None:
    """Kong's get_headers() hands a plugin the first 100 headers, and nginx sends them all."""
    headers = {f"x-filler-{i}": "ok" for i in range(120)}
    headers["x-late-note"] = f"see {EC2}"
    status, _, body = send(gw, "/v1/messages", messages("hello"), headers)
    assert status == 200, body
    assert leaks(recorder.seen[-1]) == []


def test_a_verbose_plugin_server_logs_nothing_of_a_request(tmp_path: Path, recorder: Recorder) -> None:
    """kong-pdk's -v logs every RPC's arguments and result (headers, bodies, token maps): not ours."""
    server = Path(sys.executable).with_name("aws-masker-server")

    def config(_stub_url: str) -> str:
        text = (ROOT / "kong.yml").read_text().replace("https://api.anthropic.com", recorder.url)
        return plugin_config(text, enable_event_monitoring=False)

    start = f"{server} -vvv --kong-prefix {{prefix}}"
    with running(tmp_path, start_cmd=start, config_factory=config, log_level="debug") as verbose:
        target = f"/v1/messages?note={EC2}"
        status, _, _ = send(verbose, target, messages(PROMPT), {"x-note": f"account {ACCOUNT}"})
        assert status == 200
        send(verbose, f"/v1/{EC2}", messages(PROMPT))  # refused
        log = "\n".join(verbose.gateway.lines)
    assert "rpc: #" in log  # the plugin server's debug lines are there...
    assert leaks(log) == []  # ...and carry nothing of the requests


@pytest.mark.parametrize(
    "where",
    ["header", "target"],
)
def test_an_identifier_beside_bytes_that_are_not_utf8_never_passes(
    gw: Stack, recorder: Recorder, where: str
) -> None:
    """A latin-1 byte in a header value or the target: Kong hands either to the plugin server as a
    msgpack string, which must be UTF-8 (with or without aws-masker-collect). Refused, not forwarded."""
    before = len(recorder.seen)
    body = messages("hello")
    target = f"/v1/messages?note=caf\xe9-{EC2}" if where == "target" else "/v1/messages"
    header = f"X-Note: caf\xe9 {EC2}\r\n" if where == "header" else ""
    reply = raw_exchange(
        gw,
        (
            f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{header}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        + body,
    )
    status = int(reply.split(b" ", 2)[1])
    assert status == 200 or status >= 400, reply[:200]
    for seen in recorder.seen[before:]:
        assert EC2.encode() not in seen and not leaks(seen), seen[:300]
    assert EC2.encode() not in reply
