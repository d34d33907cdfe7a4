"""The plugin's phases against a recording fake of the PDK (the end-to-end tests use the real plugin
server behind the local gateway). Every config field of the schema is exercised here or in
test_engine.py."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from aws_masker import kong_plugin
from aws_masker.config import CATEGORY_TOGGLES
from aws_masker.phases import COLLECT_KEY, CTX_KEY
from aws_masker.schema import SCHEMA

PROMPT = "Analyze: EC2 i-1234567890abcdef0, S3 my-bucket, RDS prod-db, IP 10.0.1.100"


class FakeKong:
    """Records PDK calls by dotted name and answers from a small state."""

    def __init__(
        self,
        body: bytes | None = b"",
        headers: dict[str, str] | None = None,
        target: str = "/v1/messages",
        collect: bool = False,
    ) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.request_body = body
        if headers is None:
            headers = {"Content-Type": "application/json"} if body else {}
        self.request_headers = {k.lower(): [v] for k, v in headers.items()}
        self.target = target
        self.sent_query: str | None = None
        self.cleared: list[str] = []
        self.shared: dict[str, Any] = {}
        self.serialized: dict[str, Any] = {}
        self.sent_body: bytes | None = None
        self.sent_headers: dict[str, str] = {}
        self.exit: tuple[int, Any, Any] | None = None
        if collect:  # what aws-masker-collect (Lua, priority 772) leaves before aws-masker runs
            entry: dict[str, Any] = {"v": 2, "target": target, "headers": self.request_headers or []}
            if body is not None:
                entry["body"] = body.decode("latin-1")  # each byte as the character with its code
            self.shared[COLLECT_KEY] = entry

    def __getattr__(self, name: str) -> _Path:
        return _Path(self, f"kong.{name}")

    def handle(self, method: str, args: tuple[Any, ...]) -> Any:
        # kong.response.exit is terminal: Kong never answers a PDK call made after it.
        assert self.exit is None, f"PDK call {method} after kong.response.exit"
        self.calls.append((method, args))
        if method == "kong.request.get_headers":
            return self.request_headers
        if method == "kong.request.get_path_with_query":
            return self.target
        if method == "kong.request.get_raw_body":
            return self.request_body
        if method == "kong.service.request.set_raw_query":
            self.sent_query = args[0]
            return None
        if method == "kong.service.request.clear_header":
            self.cleared.append(args[0])
            return None
        if method == "kong.service.request.set_raw_body":
            self.sent_body = args[0]
            return None
        if method == "kong.service.request.set_headers":
            self.sent_headers.update(args[0])
            return None
        if method == "kong.ctx.shared.set":
            self.shared[args[0]] = args[1]
            return None
        if method == "kong.ctx.shared.get":
            return self.shared.get(args[0])
        if method == "kong.log.serialize":
            return json.dumps(self.serialized)
        if method == "kong.response.exit":
            self.exit = (args[0], args[1] if len(args) > 1 else None, args[2] if len(args) > 2 else None)
            return None
        if method.startswith("kong.log."):
            return None
        raise AssertionError(f"unexpected PDK call {method}")


class _Path:
    def __init__(self, root: FakeKong, path: str) -> None:
        self._root, self._path = root, path

    def __getattr__(self, name: str) -> _Path:
        return _Path(self._root, f"{self._path}.{name}")

    def __call__(self, *args: Any) -> Any:
        return self._root.handle(self._path, args)


def defaults(**overrides: Any) -> dict[str, Any]:
    conf = {name: spec.get("default") for field in SCHEMA for name, spec in field.items()}
    conf.update(token_secret="unit-test-secret-0123", __seq__=1, __plugin_id="x")
    conf.update(overrides)
    return conf


def run(phase: str, kong: FakeKong, conf: dict[str, Any] | None = None) -> kong_plugin.Plugin:
    plugin = kong_plugin.Plugin(conf or defaults())
    getattr(plugin, phase)(kong)
    return plugin


def messages(text: str = PROMPT) -> bytes:
    return json.dumps(
        {"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": text}]}
    ).encode()


def test_plugin_contract() -> None:
    """access and log only: a response handler would make Kong buffer the whole answer."""
    assert [p for p in ("access", "response", "rewrite", "log") if hasattr(kong_plugin.Plugin, p)] == [
        "access",
        "log",
    ]
    assert isinstance(kong_plugin.priority, int) and 770 < kong_plugin.priority < 772
    names = [next(iter(f)) for f in SCHEMA]
    assert len(names) == len(set(names))
    assert set(CATEGORY_TOGGLES) <= set(names)


READS = ["kong.request.get_headers", "kong.request.get_path_with_query", "kong.request.get_raw_body"]


@pytest.mark.parametrize("collect", [True, False], ids=["collected", "read"])
def test_access_masks_and_marks(collect: bool) -> None:
    kong = FakeKong(messages(), collect=collect)
    run("access", kong)
    sent = kong.sent_body.decode()
    assert all(o not in sent for o in ("i-1234567890abcdef0", "my-bucket", "prod-db", "10.0.1.100"))
    assert json.loads(sent)["messages"][0]["content"].count("AWS_") == 4
    assert kong.sent_headers == {}  # the restore plugin asks for identity, in Lua
    state = json.loads(kong.shared[CTX_KEY])
    assert state["v"] == 2
    assert len(state["tokens"]) == 4 and set(state["tokens"].values()) >= {"prod-db"}
    assert state["cat"] == {"EC2": "ec2", "S3_BUCKET": "s3", "RDS": "rds", "PRIVATE_IP": "private_ip"}
    masked = state["masked"]
    assert masked["count"] == 4 and masked["categories"] == {"ec2": 1, "s3": 1, "rds": 1, "private_ip": 1}
    assert masked["body_size"] == len(messages()) and masked["processing_time_ms"] >= 0
    assert abs(masked["at"] / 1000 - time.time()) < 60
    assert kong.exit is None
    methods = [m for m, _ in kong.calls]
    assert methods == [  # the budget in phases.py: 3 calls with aws-masker-collect, 6 without
        "kong.ctx.shared.get",
        *([] if collect else READS),
        "kong.service.request.set_raw_body",
        "kong.ctx.shared.set",
    ]
    assert methods.index("kong.ctx.shared.set") > methods.index("kong.service.request.set_raw_body")


@pytest.mark.parametrize("collect", [True, False], ids=["collected", "read"])
def test_access_without_identifiers_leaves_the_body_and_still_marks(collect: bool) -> None:
    kong = FakeKong(messages("hello there"), collect=collect)
    run("access", kong)
    # a body handed over by aws-masker-collect is always sent: what goes upstream is what was read
    assert kong.sent_body == (messages("hello there") if collect else None) and kong.sent_headers == {}
    state = json.loads(kong.shared[CTX_KEY])
    assert (state["tokens"], state["cat"], state["masked"]["count"]) == ({}, {}, 0)
    assert [m for m, _ in kong.calls] == [
        "kong.ctx.shared.get",
        *(["kong.service.request.set_raw_body"] if collect else READS),
        "kong.ctx.shared.set",
    ]


def test_access_without_body_marks() -> None:
    kong = FakeKong(b"")
    run("access", kong)
    assert CTX_KEY in kong.shared and kong.exit is None


def test_body_kong_could_not_hand_over_is_refused_with_413() -> None:
    kong = FakeKong(None)
    run("access", kong)
    status, body, _ = kong.exit
    assert status == 413 and body["error"] == "AWS_MASKER_2005"
    assert CTX_KEY not in kong.shared


def test_max_body_size_is_enforced_from_content_length_and_body() -> None:
    kong = FakeKong(messages(), {"Content-Length": "2048"})
    run("access", kong, defaults(max_body_size=1024))
    assert kong.exit[0] == 413
    assert [m for m, _ in kong.calls if not m.startswith("kong.log")] == [
        "kong.ctx.shared.get",
        "kong.request.get_headers",
        "kong.response.exit",
    ]
    kong = FakeKong(messages())  # chunked: no Content-Length
    run("access", kong, defaults(max_body_size=64))
    assert kong.exit[0] == 413 and CTX_KEY not in kong.shared


def test_non_utf8_body_gets_400_and_is_not_forwarded() -> None:
    kong = FakeKong(b'{"content": "10.0.1.100 \xff"}')
    run("access", kong)
    status, body, headers = kong.exit
    assert status == 400 and body["error"] == "AWS_MASKER_2004"
    assert "10.0.1.100" not in json.dumps(body)
    assert kong.sent_body is None and CTX_KEY not in kong.shared
    assert headers == {"Content-Type": "application/json"}


def test_unexpected_exception_fails_closed_with_503(monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_masker import phases

    def boom(*_a: Any) -> None:
        raise KeyError("i-1234567890abcdef0")

    monkeypatch.setattr(phases, "mask_request", boom)
    kong = FakeKong(messages())
    run("access", kong)
    status, body, _ = kong.exit
    assert status == 503 and body == {
        "error": "AWS_MASKER_2001",
        "message": "masking failed; the request was not forwarded",
    }
    logged = " ".join(str(a) for m, a in kong.calls if m.startswith("kong.log"))
    assert "KeyError" in logged and "i-1234567890abcdef0" not in logged
    assert kong.sent_body is None and CTX_KEY not in kong.shared


def test_log_masked_requests_logs_counts_only() -> None:
    for flag in (False, True):
        kong = FakeKong(messages())
        run("access", kong, defaults(log_masked_requests=flag))
        lines = [a[0] for m, a in kong.calls if m == "kong.log.notice"]
        assert bool(lines) is flag
        if flag:
            assert lines == ["aws-masker: masked 4 identifiers ec2=1 private_ip=1 rds=1 s3=1"]


def test_token_secret_field_makes_tokens_stable_across_instances() -> None:
    a, b = FakeKong(messages()), FakeKong(messages())
    run("access", a, defaults(token_secret="one-secret-0123456"))
    run("access", b, defaults(token_secret="one-secret-0123456"))
    c = FakeKong(messages())
    run("access", c, defaults(token_secret="another-secret-0123"))
    assert a.sent_body == b.sent_body != c.sent_body


def test_allow_list_field_reaches_the_engine() -> None:
    kong = FakeKong(messages())
    run("access", kong, defaults(allow_list=["10.0.1.100"]))
    assert "10.0.1.100" in kong.sent_body.decode()


@pytest.mark.parametrize("field", sorted(CATEGORY_TOGGLES))
def test_each_toggle_field_reaches_the_engine(field: str) -> None:
    kong = FakeKong(messages())
    run("access", kong, defaults(**{field: False}))
    on = FakeKong(messages())
    run("access", on)
    changed = {"mask_ec2_instances", "mask_s3_buckets", "mask_rds_instances", "mask_private_ips"}
    assert (kong.sent_body != on.sent_body) is (field in changed)


def test_empty_body_for_a_request_that_has_one_is_refused() -> None:
    for headers in ({"Content-Length": "120"}, {"Transfer-Encoding": "chunked"}):
        kong = FakeKong(b"", headers)
        run("access", kong)
        assert kong.exit[0] == 503 and kong.exit[1]["error"] == "AWS_MASKER_2003"
        assert CTX_KEY not in kong.shared
    kong = FakeKong(b"", {"Content-Length": "0"})
    run("access", kong)
    assert kong.exit is None and CTX_KEY in kong.shared


def test_refuse_binary_documents_field_refuses_a_pdf_with_415() -> None:
    pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERg=="},
    }
    body = json.dumps(
        {"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": [pdf]}]}
    ).encode()
    passed = FakeKong(body)
    run("access", passed)
    assert passed.exit is None and CTX_KEY in passed.shared
    refused = FakeKong(body)
    run("access", refused, defaults(refuse_binary_documents=True))
    status, error, _ = refused.exit
    assert status == 415 and error["error"] == "AWS_MASKER_2006"
    assert refused.sent_body is None and CTX_KEY not in refused.shared


def test_utf16_body_gets_400_and_is_not_forwarded() -> None:
    kong = FakeKong(messages().decode().encode("utf-16-le"))
    run("access", kong)
    status, body, _ = kong.exit
    assert status == 400 and body["error"] == "AWS_MASKER_2004"
    assert kong.sent_body is None and CTX_KEY not in kong.shared


# -- issue 10: the other channels (headers, query, path), body formats and codings ------------------
EC2 = "i-0123456789abcdef0"
ACCOUNT = "483920175526"


@pytest.mark.parametrize("collect", [True, False], ids=["collected", "read"])
def test_custom_headers_and_query_arguments_are_masked_into_one_token_map(collect: bool) -> None:
    headers = {
        "Content-Type": "application/json",
        "x-api-key": "sk-ant-api03-" + "a" * 40,
        "anthropic-metadata": f"incident on {EC2}",
        "x-note": f"see {EC2} and 10.0.1.100",
    }
    kong = FakeKong(
        messages(f"why is {EC2} down"),
        headers,
        f"/v1/messages?note={EC2}&n%69ce=10%2E0%2E1%2E100",
        collect=collect,
    )
    run("access", kong)
    assert kong.exit is None
    methods = [m for m, _ in kong.calls]
    assert methods == [
        "kong.ctx.shared.get",
        *([] if collect else READS),
        "kong.service.request.set_headers",
        "kong.service.request.set_raw_query",
        "kong.service.request.set_raw_body",
        "kong.ctx.shared.set",
    ]
    assert set(kong.sent_headers) == {"anthropic-metadata", "x-note"}  # x-api-key never touched
    sent = json.dumps(kong.sent_headers) + kong.sent_query + kong.sent_body.decode()
    assert EC2 not in sent and "10.0.1.100" not in sent
    tokens = json.loads(kong.shared[CTX_KEY])["tokens"]
    ec2_token = next(t for t, o in tokens.items() if o == EC2)
    assert ec2_token in kong.sent_headers["x-note"][0] and ec2_token in kong.sent_query
    assert ec2_token in kong.sent_body.decode()  # the same identifier, the same token everywhere
    assert kong.sent_query.startswith(f"note={ec2_token}&n%69ce=")


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        (f"/v1/messages/{EC2}", {}),
        ("/v1/messages/i%2D0123456789abcdef0", {}),
        ("/v1/messages", {"anthropic-beta": f"tools-{EC2}"}),
        ("/v1/messages", {"User-Agent": f"cli on 10.0.1.100 {EC2}"}),
    ],
)
def test_an_identifier_where_it_cannot_be_masked_is_refused(target: str, headers: dict[str, str]) -> None:
    kong = FakeKong(messages(), {"Content-Type": "application/json", **headers}, target)
    run("access", kong)
    status, body, _ = kong.exit
    assert (status, body["error"]) == (400, "AWS_MASKER_2009")
    assert EC2 not in json.dumps(body) and CTX_KEY not in kong.shared


@pytest.mark.parametrize(
    "content_type", [None, "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; b=x"]
)
def test_bodies_that_are_not_json_are_refused_with_415(content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    kong = FakeKong(f"text=see+{EC2}".encode(), headers)
    run("access", kong)
    status, body, _ = kong.exit
    assert (status, body["error"]) == (415, "AWS_MASKER_2007") and CTX_KEY not in kong.shared


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/vnd.x+json"])
def test_json_media_types_are_masked(content_type: str) -> None:
    kong = FakeKong(messages(), {"Content-Type": content_type})
    run("access", kong)
    assert kong.exit is None and EC2 not in kong.sent_body.decode()


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_compressed_bodies_are_decoded_masked_and_sent_plain(coding: str) -> None:
    import gzip
    import zlib

    import brotli

    raw = messages()
    packed = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress}[coding](raw)
    kong = FakeKong(packed, {"Content-Type": "application/json", "Content-Encoding": coding})
    run("access", kong)
    assert kong.exit is None
    assert json.loads(kong.sent_body)["messages"][0]["content"].count("AWS_") == 4
    assert kong.cleared == ["Content-Encoding"]


def test_compressed_bodies_without_identifiers_are_still_sent_plain() -> None:
    import gzip

    raw = messages("hello")
    kong = FakeKong(gzip.compress(raw), {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    run("access", kong)
    assert kong.sent_body == raw and kong.cleared == ["Content-Encoding"]


def test_a_decompression_bomb_is_refused_with_413() -> None:
    import gzip

    bomb = gzip.compress(b'{"a":"' + b"0" * 5_000_000 + b'"}')
    kong = FakeKong(bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    run("access", kong, defaults(max_body_size=100_000))
    assert (kong.exit[0], kong.exit[1]["error"]) == (413, "AWS_MASKER_2005")


@pytest.mark.parametrize("coding", ["zstd", "gzip, br", "compress"])
def test_unknown_or_stacked_codings_are_refused_with_415(coding: str) -> None:
    kong = FakeKong(b"\x00\x01", {"Content-Type": "application/json", "Content-Encoding": coding})
    run("access", kong)
    assert (kong.exit[0], kong.exit[1]["error"]) == (415, "AWS_MASKER_2008")
    assert "kong.request.get_raw_body" not in [m for m, _ in kong.calls]


def test_a_name_found_in_the_body_is_masked_where_it_stands_bare_in_a_header_or_query() -> None:
    headers = {"Content-Type": "application/json", "x-note": "why is acme-prod-data slow?"}
    kong = FakeKong(messages("copy s3://acme-prod-data/logs/x.gz"), headers, "/v1/messages?b=acme-prod-data")
    run("access", kong)
    tokens = json.loads(kong.shared[CTX_KEY])["tokens"]
    token = next(t for t, o in tokens.items() if o == "acme-prod-data")
    assert kong.sent_headers["x-note"] == [f"why is {token} slow?"]
    assert kong.sent_query == f"b={token}"


def test_more_headers_than_kong_hands_over_are_refused() -> None:
    headers = {"Content-Type": "application/json", **{f"x-h{i}": "v" for i in range(1000)}}
    kong = FakeKong(messages(), headers)
    run("access", kong)
    assert (kong.exit[0], kong.exit[1]["error"]) == (431, "AWS_MASKER_2010")
    assert kong.calls[1] == ("kong.request.get_headers", (1000,))
    collected = FakeKong(messages(), headers, collect=True)
    run("access", collected)
    assert (collected.exit[0], collected.exit[1]["error"]) == (431, "AWS_MASKER_2010")
    assert [m for m, _ in collected.calls if not m.startswith("kong.log")] == [
        "kong.ctx.shared.get",
        "kong.response.exit",
    ]


@pytest.mark.parametrize(
    "value",
    [
        "",
        '{"v": 2, "target": "/v1/messages", "headers": {}}',  # the JSON string of an older collector
        {"v": 1, "target": "/v1/messages", "headers": {}},
        {"v": 2, "headers": {}},
        {"v": 2, "target": "/v1/messages", "headers": {"x": 1}},
        {"v": 2, "target": "/v1/messages", "headers": {}, "body": "\u0100 is over 255"},
        {"v": 2, "target": "/v1/messages", "headers": {}, "body": b"bytes"},
        [1],
    ],
)
def test_an_unreadable_collected_request_is_read_again(value: Any) -> None:
    """aws-masker-collect's value is only a shortcut: anything off, and aws-masker reads the request."""
    kong = FakeKong(messages())
    kong.shared[COLLECT_KEY] = value
    run("access", kong)
    assert kong.exit is None
    assert [m for m, _ in kong.calls][1:4] == READS
    assert "i-1234567890abcdef0" not in kong.sent_body.decode()


def test_a_body_the_collector_did_not_hand_over_is_read() -> None:
    """Spilled to disk, or over max_inline_body_bytes: headers and target from Lua, the body by call."""
    kong = FakeKong(messages(), {"Content-Type": "application/json", "x-note": "i-1234567890abcdef0"})
    kong.shared[COLLECT_KEY] = {"v": 2, "target": "/v1/messages", "headers": kong.request_headers}
    run("access", kong)
    assert [m for m, _ in kong.calls] == [
        "kong.ctx.shared.get",
        "kong.request.get_raw_body",
        "kong.service.request.set_headers",
        "kong.service.request.set_raw_body",
        "kong.ctx.shared.set",
    ]
    assert "i-1234567890abcdef0" not in json.dumps(kong.sent_headers) + kong.sent_body.decode()
