"""Restoring responses: the Python reference (restore.py, sse.py) and its Lua twin, byte for byte.

The Lua files are the ones Kong loads (kong/plugins/aws-masker-restore/), run in an embedded
LuaJIT. Every case runs through both and through several chunkings; the differential properties
at the end feed both random streams cut into random chunks, down to single bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lua_restore import LuaRestore

from aws_masker.body import response_restorer
from aws_masker.engine import Masker
from aws_masker.jsonspan import scan
from aws_masker.restore import restore_text
from aws_masker.tokens import KIND_CATEGORIES, KINDS, TOKEN_RE, token_for

PROMPT = "Analyze: EC2 i-1234567890abcdef0, S3 my-bucket, RDS prod-db, IP 10.0.1.100"


def lua_kind(content_type: str) -> str:
    mtype = content_type.split(";")[0].strip()
    if mtype == "text/event-stream":
        return "sse"
    return "json" if mtype == "application/json" or mtype.endswith("+json") else "text"


@pytest.fixture(scope="module")
def lua() -> LuaRestore:
    return LuaRestore()


def chunked(body: bytes, step: int) -> list[bytes]:
    return [body[i : i + step] for i in range(0, len(body), step)] or [b""]


def both(
    lua: LuaRestore,
    body: bytes,
    tokens: Mapping[str, str],
    content_type: str,
    steps: tuple[int, ...] = (1, 2, 3, 7, 64, 1 << 30),
    max_held: int = 1 << 20,
) -> bytes:
    """Restore ``body`` with both implementations and every chunking. Python and Lua must agree on
    each chunking; the chunkings must agree with each other unless the stream passed ``max_held``
    (where the restore stops depends on how the bytes arrived). Returns the whole-body result."""
    outputs = []
    passed = False
    for step in steps:
        chunks = chunked(body, step)
        py = response_restorer(tokens, KIND_CATEGORIES, content_type, max_held)
        py_out = b"".join(py.feed(c) for c in chunks) + py.finish()
        kind = lua_kind(content_type)
        assert lua.run(lua.restorer(tokens, KIND_CATEGORIES, kind, max_held), chunks) == py_out
        outputs.append(py_out)
        passed = passed or py.passed
    assert passed or len(set(outputs)) == 1
    return outputs[-1]


# -- SSE helpers -------------------------------------------------------------------------------------


def event(name: str, data: dict, nl: str = "\n") -> bytes:
    return f"event: {name}{nl}data: {json.dumps(data, separators=(',', ':'))}{nl}{nl}".encode()


def stream(deltas: list[str], kind: str = "text_delta", fld: str = "text", index: int = 0) -> bytes:
    out = [
        event("message_start", {"type": "message_start", "message": {"id": "m", "content": []}}),
        event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        ),
        event("ping", {"type": "ping"}),
    ]
    for d in deltas:
        delta = {"type": "content_block_delta", "index": index, "delta": {"type": kind, fld: d}}
        out.append(event("content_block_delta", delta))
    out += [
        event("content_block_stop", {"type": "content_block_stop", "index": index}),
        event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
        event("message_stop", {"type": "message_stop"}),
    ]
    return b"".join(out)


def parse(body: bytes) -> list[tuple[str, dict]]:
    out = []
    for block in re.split(rb"\r\n\r\n|\n\n|\r\r", body):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in re.split(r"\r\n|\r|\n", block.decode()))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def text_of(events: list[tuple[str, dict]], fld: str = "text") -> str:
    return "".join(d["delta"][fld] for n, d in events if n == "content_block_delta")


# -- behaviour -----------------------------------------------------------------------------------------


def test_sse_token_split_at_every_position_is_restored(masker: Masker, lua: LuaRestore) -> None:
    masked, result = masker.mask_text(PROMPT)
    token = TOKEN_RE.search(masked).group()
    start = masked.index(token)
    for cut in range(start + 1, start + len(token)):
        body = stream([masked[:cut], masked[cut:]])
        got = parse(both(lua, body, result.tokens, "text/event-stream; charset=utf-8", steps=(1, 5, 1 << 30)))
        assert [n for n, _ in got] == [n for n, _ in parse(body)]  # same events, same order
        assert text_of(got) == PROMPT


def test_sse_a_token_cut_into_many_deltas_is_restored(masker: Masker, lua: LuaRestore) -> None:
    masked, result = masker.mask_text(PROMPT)
    out = both(lua, stream(list(masked)), result.tokens, "text/event-stream")
    assert text_of(parse(out)) == PROMPT


def test_sse_tool_input_and_thinking_deltas_are_restored(masker: Masker, lua: LuaRestore) -> None:
    masked, result = masker.mask_text(PROMPT)
    partial = json.dumps({"q": masked})
    for kind, fld, text in (
        ("input_json_delta", "partial_json", partial),
        ("thinking_delta", "thinking", masked),
    ):
        body = stream([text[:20], text[20:41], text[41:]], kind, fld)
        out = parse(both(lua, body, result.tokens, "text/event-stream"))
        assert text_of(out, fld) == (json.dumps({"q": PROMPT}) if kind == "input_json_delta" else PROMPT)


def test_sse_foreign_tokens_and_trailing_prefixes_pass_through(masker: Masker, lua: LuaRestore) -> None:
    _, result = masker.mask_text(PROMPT)
    text = "AWS_EC2_ffffffffffff is not ours; trailing AWS_EC"
    out = parse(both(lua, stream([text[:30], text[30:]]), result.tokens, "text/event-stream"))
    assert text_of(out) == text


def test_sse_other_events_are_restored_in_place(masker: Masker, lua: LuaRestore) -> None:
    masked, result = masker.mask_text(PROMPT)
    body = event("error", {"type": "error", "error": {"type": "overloaded_error", "message": masked}})
    assert parse(both(lua, body, result.tokens, "text/event-stream"))[0][1]["error"]["message"] == PROMPT


def test_sse_edits_only_the_delta_text(lua: LuaRestore) -> None:
    """Key order, spacing, escapes elsewhere, line endings and event names stay as the upstream sent them."""
    token = token_for(b"k", "EC2", "i-0123456789abcdef0")
    tokens = {token: 'i-0123456789abcdef0 "quoted"\t\u00e9'}
    data = (
        '{ "delta" : {"text": "x ' + token[:9] + '", "type":"text_delta", "note":"caf\\u00e9"},'
        ' "index":  3, "type": "content_block_delta" }'
    )
    rest = (
        '{"index":3,"type":"content_block_delta","delta":{"type":"text_delta","text":"' + token[9:] + '!"}}'
    )
    crlf = "\r\n"
    body = f"id: 7{crlf}event: content_block_delta{crlf}data: {data}{crlf}{crlf}event: d{crlf}data: {rest}"
    body = (body + crlf + crlf).encode()
    out = both(lua, body, tokens, "text/event-stream")
    escaped = 'i-0123456789abcdef0 \\"quoted\\"\\t\u00e9'
    # the carry moves on: the first delta loses the token's start, the second restores it whole
    assert out == body.replace(f'x {token[:9]}"'.encode(), b'x "', 1).replace(
        f'"{token[9:]}!"'.encode(), f'"{escaped}!"'.encode(), 1
    )


def test_sse_end_of_block_gives_a_held_prefix_back(lua: LuaRestore) -> None:
    token = token_for(b"k", "EC2", "i-0123456789abcdef0")
    body = stream(["see " + token[:10]])  # the block ends on a prefix that never completes
    out = both(lua, body, {token: "i-0123456789abcdef0"}, "text/event-stream")
    assert out == body


@pytest.mark.parametrize("nl", ["\n", "\r\n", "\r"])
def test_sse_line_endings(nl: str, masker: Masker, lua: LuaRestore) -> None:
    masked, result = masker.mask_text(PROMPT)
    body = b"".join(
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            nl,
        )
        for piece in (masked[:25], masked[25:])
    )
    assert text_of(parse(both(lua, body, result.tokens, "text/event-stream"))) == PROMPT


def test_sse_holds_at_most_max_held_then_passes_the_rest(lua: LuaRestore) -> None:
    token = token_for(b"k", "EC2", "i-0123456789abcdef0")
    tokens = {token: "i-0123456789abcdef0"}
    big = "x" * 5000
    body = stream(["a " + token, big + token[:8], token[8:] + " b", "c " + token])
    out = both(lua, body, tokens, "text/event-stream", steps=(1, 100), max_held=4096)
    assert b"i-0123456789abcdef0" in out.split(big.encode())[0]  # restored before the limit
    assert out.endswith(body[-300:])  # and passed on, untouched, after it
    assert len(parse(out)) == len(parse(body))


@pytest.mark.parametrize("content_type", ["application/json", "application/vnd.api+json; charset=utf-8"])
def test_json_restore_escapes_originals(content_type: str, lua: LuaRestore) -> None:
    token = token_for(b"k", "S3_BUCKET", "b")
    original = 'we"ird\\name\n\x01\u2028é'
    body = json.dumps({"content": [{"type": "text", "text": f"bucket {token}."}]}).encode()
    out = both(lua, body, {token: original}, content_type)
    assert json.loads(out)["content"][0]["text"] == f"bucket {original}."


def test_text_restore_and_counts(masker: Masker, lua: LuaRestore) -> None:
    masked, result = masker.mask_text(PROMPT)
    body = (masked + " AWS_EC2_ffffffffffff").encode()
    assert both(lua, body, result.tokens, "text/plain").decode() == PROMPT + " AWS_EC2_ffffffffffff"
    py = response_restorer(result.tokens, KIND_CATEGORIES, "text/plain", 1 << 20)
    py.feed(body)
    lr = lua.restorer(result.tokens, KIND_CATEGORIES, "text")
    lua.run(lr, [body])
    lua_counts = {k.decode(): v for k, v in lr.tokens.counts.items()}
    assert dict(py.tokens.counts) == lua_counts == {"ec2": 1, "s3": 1, "rds": 1, "private_ip": 1}
    assert lr.tokens.total == 4


def test_nothing_to_restore_passes_bytes_through(lua: LuaRestore) -> None:
    body = b"\xff\xfe not utf-8, AWS_EC2_0123456789ab"
    assert both(lua, body, {}, "text/plain") == body
    assert both(lua, body, {}, "text/event-stream") == body


# -- the span scanner ------------------------------------------------------------------------------------

SCAN_CASES: list[tuple[bytes, tuple | None]] = [
    (
        b'{"type":"content_block_delta","index":12,"delta":{"type":"text_delta","text":"ab"}}',
        (b"content_block_delta", 12, b"text_delta", {b"text": b"ab"}),
    ),
    (b'{"index":123456789,"type":"x"}', (b"x", 123456789, None, {})),
    (b'{"index":1234567890}', (None, None, None, {})),  # more than 9 digits: not an index
    (b'{"index":012}', None),  # a leading zero is not JSON
    (b'{"index":1.0}', (None, None, None, {})),
    (b'{"index":-1}', (None, None, None, {})),
    (b'{"index":"1"}', (None, None, None, {})),
    (b'{"type":"a\\u0062"}', (None, None, None, {})),  # escapes: not a plain type
    (b'{"t\\u0079pe":"x","type":"y"}', (b"y", None, None, {})),  # an escaped key is another key
    (b'{"delta":{"text":"a","text":"b"}}', None),  # a field twice
    (
        b'{"delta":{"text":1,"partial_json":"p","thinking":"t"}}',
        (None, None, None, {b"partial_json": b"p", b"thinking": b"t"}),
    ),
    (b'{"delta":[{"text":"x"}]}', (None, None, None, {})),
    (b'{"x":"a\x1fb"}', None),  # a raw control character
    (b'{"x":"a\x7fb\xff"}', (None, None, None, {})),  # DEL and non-UTF-8 bytes are not checked
    (b'{"x":"\\q"}', None),
    (b'{"x":"\\u12G4"}', None),
    (b'{"x":[1,2,]}', None),
    (b'{"x":{"a":1,}}', None),
    (b'{"x":[[[[{"y":[{}]}]]]],"type":"t"}', (b"t", None, None, {})),
    (b'{"x":01}', None),
    (b'{"x":1.}', None),
    (b'{"x":1e}', None),
    (b'{"x":-}', None),
    (b'{"x":tru}', None),
    (b'{"x":nulll}', None),
    (b'{"x":NaN}', None),
    (b'{"a":1} x', None),
    (b' \t{"a":1}\r\n ', (None, None, None, {})),
    (b'{"a" 1}', None),
    (b'{"a":1 "b":2}', None),
    (b"{'a':1}", None),
    (b'{"a":"unterminated}', None),
    (b"[]", None),
    (b"", None),
]


@pytest.mark.parametrize(("raw", "expected"), SCAN_CASES)
def test_scan_cases(raw: bytes, expected: tuple | None, lua: LuaRestore) -> None:
    result = scan(raw)
    lua_result = lua.jsonspan.scan(raw, 1, len(raw) + 1)
    if expected is None:
        assert result is None and lua_result is None
        return
    assert result is not None and lua_result is not None
    fields = {k: raw[a:b] for k, (a, b) in result.fields.items()}
    assert (result.type, result.index, result.delta_type, fields) == expected
    lua_fields = {
        k: raw[a - 1 : b - 1] for k, (a, b) in ((k, tuple(v.values())) for k, v in lua_result.fields.items())
    }
    assert (lua_result.type, lua_result.index, lua_result.delta_type, lua_fields) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(st.sampled_from(["type", "index", "delta", "x", "text"]), json_values, max_size=5),
    st.sampled_from([None, 0, 2]),
)
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_scan_accepts_what_json_accepts_and_agrees_with_lua(doc: dict, indent: int | None) -> None:
    raw = json.dumps(doc, indent=indent).encode()
    result = scan(raw)
    assert result is not None
    assert result.type == (
        doc["type"].encode()
        if isinstance(doc.get("type"), str) and "\\" not in json.dumps(doc["type"])
        else None
    )
    lua_result = _LUA.jsonspan.scan(raw, 1, len(raw) + 1)
    assert lua_result is not None and lua_result.type == result.type and lua_result.index == result.index


@given(
    st.binary(max_size=60)
    | st.text(alphabet='{}[]",:0123456789.eE+-tfnrul \\x\x00\x1f\t\x7f', max_size=40).map(str.encode)
)
@settings(max_examples=500, deadline=None)
def test_scan_rejects_what_json_rejects_like_lua(raw: bytes) -> None:
    try:
        doc = json.loads(raw)
        strict = isinstance(doc, dict) and b"NaN" not in raw and b"Infinity" not in raw
    except ValueError:
        strict = False
    result = scan(raw)
    lua_result = _LUA.jsonspan.scan(raw, 1, len(raw) + 1)
    assert (result is None) == (lua_result is None)
    if strict and not _duplicate_interesting_keys(raw):
        assert result is not None


def _duplicate_interesting_keys(raw: bytes) -> bool:
    dup = False

    def hook(pairs: list[tuple[str, object]]) -> dict:
        nonlocal dup
        keys = [k for k, _ in pairs if k in ("type", "index", "delta", "text", "partial_json", "thinking")]
        dup = dup or len(keys) != len(set(keys))
        return dict(pairs)

    json.loads(raw, object_pairs_hook=hook)
    return dup


_LUA = LuaRestore()

# -- differential: random streams, random chunks ------------------------------------------------------------

TOKEN_POOL = [token_for(b"diff", kind, f"value-{i}") for i, kind in enumerate(KINDS[:12])]
originals = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from(['"', "\\", "\n", "\x01"]),
    min_size=1,
    max_size=12,
)


@st.composite
def token_maps(draw: st.DrawFn) -> dict[str, str]:
    chosen = draw(st.lists(st.sampled_from(TOKEN_POOL), unique=True, max_size=6))
    return {t: draw(originals) for t in chosen}


@st.composite
def model_text(draw: st.DrawFn, tokens: list[str]) -> str:
    foreign = [t for t in TOKEN_POOL if t not in tokens] + ["AWS_EC2_ffffffffffff"]
    parts = draw(
        st.lists(
            st.sampled_from(tokens or ["AWS_"])
            | st.sampled_from(foreign)
            | st.text(max_size=8)
            | st.sampled_from(tokens or ["AWS_"]).map(lambda t: t[: len(t) // 2])
            | st.sampled_from(["AWS_", "AWS", "A", "\\", '"', "\n", "é"]),
            max_size=12,
        )
    )
    return "".join(parts)


def split_text(draw: st.DrawFn, text: str) -> list[str]:
    """``text`` cut at random places (every token cut somewhere, often)."""
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=8)))
    return [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]


ODD_EVENTS = [
    'data: {{"type":"content_block_delta",{nl}data: "index":0}}{nl}{nl}',  # two data lines
    'data: {{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{t}"{nl}{nl}',
    'data: {{"type":"content_block_delta","index":{i},"index":{i},"delta":{{"type":"text_delta",'
    '"text":"{t}"}}}}{nl}{nl}',  # a duplicate key
    'data: {{"type":"content_block_delta","index":{i},"delta":{{"type":"text_delta","text":"{t}",'
    '"text":"x"}}}}{nl}{nl}',
    'data: {{"type":"content_block_delta","index":{i},"delta":{{"type":"text_delta","text":"{t}\u0041"}}}}'
    "{nl}{nl}",
    'data:{{"type":"content_block_delta", "index" : {i} ,"delta":{{"text":"{t}","type":"text_delta"}}}} '
    "{nl}{nl}",
    'data: {{"type":"content_block_delta","index":"{i}","delta":{{"type":"text_delta","text":"{t}"}}}}'
    "{nl}{nl}",
    'data: {{"type":"content_block_stop","index":{i}}}{nl}{nl}',
    ": comment {t}{nl}{nl}",
    "event: x{nl}data: {t}{nl}{nl}",
]


@st.composite
def sse_streams(draw: st.DrawFn, tokens: list[str]) -> bytes:
    nl = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    events: list[bytes] = []
    for _ in range(draw(st.integers(0, 4))):
        index = draw(st.integers(0, 2))
        kind, fld = draw(
            st.sampled_from(
                [("text_delta", "text"), ("input_json_delta", "partial_json"), ("thinking_delta", "thinking")]
            )
        )
        for piece in split_text(draw, draw(model_text(tokens))):
            data = {"type": "content_block_delta", "index": index, "delta": {"type": kind, fld: piece}}
            events.append(event("content_block_delta", data, nl))
            extra = draw(st.integers(0, 12))
            if extra == 0:
                events.append(event("ping", {"type": "ping", "note": draw(model_text(tokens))}, nl))
            elif extra == 1:
                token = draw(st.sampled_from(tokens or ["AWS_EC2_"]))
                odd = draw(st.sampled_from(ODD_EVENTS)).format(
                    nl=nl, i=draw(st.integers(0, 2)), t=token[: draw(st.integers(0, len(token)))]
                )
                events.append(odd.encode())
            elif extra == 2:
                events.append(draw(st.binary(max_size=20)))
        if draw(st.booleans()):
            events.append(event("content_block_stop", {"type": "content_block_stop", "index": index}, nl))
    return b"".join(events)


@given(st.data())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_differential_sse(data: st.DataObject) -> None:
    tokens = data.draw(token_maps())
    body = data.draw(sse_streams(list(tokens)))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=12)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    max_held = data.draw(st.sampled_from([1 << 20, 300, 4096]))
    py = response_restorer(tokens, KIND_CATEGORIES, "text/event-stream", max_held)
    py_out = b"".join(py.feed(c) for c in chunks) + py.finish()
    lua_out = _LUA.run(_LUA.restorer(tokens, KIND_CATEGORIES, "sse", max_held), chunks)
    assert py_out == lua_out
    whole = response_restorer(tokens, KIND_CATEGORIES, "text/event-stream", max_held)
    if not whole.passed and not py.passed:
        assert whole.feed(body) + whole.finish() == py_out  # chunking never changes the result


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_differential_json_and_text(data: st.DataObject) -> None:
    tokens = data.draw(token_maps())
    text = data.draw(model_text(list(tokens)))
    content_type = data.draw(st.sampled_from(["application/json", "text/plain"]))
    body = (json.dumps({"text": text}) if content_type == "application/json" else text).encode(
        "utf-8", "surrogatepass"
    )
    assume(body)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=12)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    py = response_restorer(tokens, KIND_CATEGORIES, content_type, 1 << 20)
    py_out = b"".join(py.feed(c) for c in chunks) + py.finish()
    lua_out = _LUA.run(_LUA.restorer(tokens, KIND_CATEGORIES, lua_kind(content_type)), chunks)
    assert py_out == lua_out
    if content_type == "application/json":
        assert json.loads(py_out) == {"text": restore_text(text, tokens)[0]}
    else:
        assert py_out.decode("utf-8", "surrogatepass") == restore_text(text, tokens)[0]


def test_lua_plugin_version_is_the_python_plugins() -> None:
    from aws_masker import __version__

    handler = (Path(__file__).parents[1] / "kong/plugins/aws-masker-restore/handler.lua").read_text()
    assert f'VERSION = "{__version__}"' in handler
