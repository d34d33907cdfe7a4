"""The leak detector (tests/leaks.py) itself: it must see an original through every encoding a reader
could undo, and must not flag a body the engine masked."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import brotli
import pytest
from leaks import assert_no_leaks, decoded_forms, find_leaks, json_unescape

from aws_masker.body import mask_request
from aws_masker.engine import Masker

INSTANCE = "i-0123456789abcdef0"
ACCOUNT = "483920175526"
SECRET = "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m"
HOST = "prod-db.c9akciq32xyz.us-east-1.rds.amazonaws.com"
ORIGINALS = (INSTANCE, ACCOUNT, SECRET, HOST)


def _u_escape(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in text)


def _escaped_json(text: str, levels: int) -> str:
    for _ in range(levels):
        text = json.dumps({"message": text})
    return text


def _percent(text: str) -> str:
    return "".join(f"%{b:02X}" for b in text.encode())


def _raw_deflate(data: bytes) -> bytes:
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflater.compress(data) + deflater.flush()


def _body(text: str) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]}).encode()


ENCODINGS: dict[str, Callable[[str], bytes | str]] = {
    "raw": lambda o: f"see {o} now",
    "url": lambda o: "/v1/messages?note=see%20" + _percent(o),
    "url-plus": lambda o: "note=" + quote_plus("see + ") + _percent(o) + "+now",
    "url-three-times": lambda o: quote(quote(_percent(o), safe=""), safe=""),
    "u-escapes": lambda o: json.dumps({"t": "x"}).replace('"x"', f'"{_u_escape(o)}"'),
    "u-escapes-uppercase-hex": lambda o: "".join(f"\\u{ord(c):04X}" for c in o),
    "slash-escape": lambda o: o.replace("/", "\\/") + "\\/",
    "escaped-json-1": lambda o: _body(_escaped_json(f'{{"OwnerId": "{o}"}}', 1)),
    "escaped-json-3": lambda o: _body(_escaped_json(f'{{"OwnerId": "{o}"}}', 3)),
    "u-escapes-inside-escaped-json": lambda o: _body(_escaped_json(_u_escape(o), 2)),
    "base64": lambda o: _body(base64.b64encode(f"doc: {o}".encode()).decode()),
    "base64-urlsafe": lambda o: base64.urlsafe_b64encode(f"~~{o}??>>".encode()).decode(),
    "base64-unaligned-run": lambda o: "abc" + base64.b64encode(f"{o} in it".encode()).decode(),
    "base64-no-padding": lambda o: base64.b64encode(f"x{o}".encode()).decode().rstrip("="),
    "base64-of-gzip": lambda o: base64.b64encode(gzip.compress(o.encode())).decode(),
    "utf-16-le": lambda o: _body(o).decode().encode("utf-16-le"),
    "utf-16-be-odd-offset": lambda o: b"\x01" + f"see {o}".encode("utf-16-be"),
    "utf-32-le": lambda o: f"see {o}".encode("utf-32-le"),
    "utf-32-be": lambda o: f"see {o}".encode("utf-32-be"),
    "gzip": lambda o: gzip.compress(_body(o)),
    "gzip-after-junk": lambda o: b"prefix " + gzip.compress(_body(o)),
    "deflate-zlib": lambda o: zlib.compress(_body(o)),
    "deflate-stored-blocks": lambda o: zlib.compress(_body(o), 0),
    "deflate-raw": lambda o: _raw_deflate(_body(o)),
    "brotli": lambda o: brotli.compress(_body(o)),
    "split-across-text-blocks": lambda o: json.dumps(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": f"Instance {o[:5]}"},
                        {"type": "text", "text": f"{o[5:9]}"},
                        {"type": "text", "text": f"{o[9:]} is down"},
                    ],
                }
            ]
        }
    ),
    "split-inside-escaped-json": lambda o: _body(
        json.dumps({"messages": [{"content": [{"text": o[:4]}, {"text": o[4:]}]}]})
    ),
}
# these hide a key's context (or nothing), not the value itself
VISIBLE = {"raw", "slash-escape", "escaped-json-1", "escaped-json-3", "deflate-stored-blocks"}


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("original", ORIGINALS, ids=("instance", "account", "secret", "host"))
def test_finds_the_original_in_every_encoding(encoding: str, original: str) -> None:
    blob = ENCODINGS[encoding](original)
    raw = blob if isinstance(blob, bytes) else blob.encode()
    if encoding not in VISIBLE:
        assert original.encode() not in raw, "the encoding must hide the original from a plain search"
    leaks = find_leaks([original, "not-planted-0000"], {"upstream body": blob})
    assert [leak.original for leak in leaks] == [original]
    assert leaks[0].where == "upstream body"
    with pytest.raises(AssertionError, match="upstream body"):
        assert_no_leaks([original], {"upstream body": blob})


@pytest.mark.parametrize(
    "written", ["483920175526.0", "4.83920175526e11", "4.83920175526E+11", "48392017552.6e1"]
)
def test_finds_an_account_written_as_a_float(written: str) -> None:
    blob = '{"input": {"OwnerId": ' + written + "}}"
    assert [leak.original for leak in find_leaks([ACCOUNT], {"body": blob})] == [ACCOUNT]


def test_names_the_decoding_chain() -> None:
    blob = gzip.compress(_body(_escaped_json(_u_escape(INSTANCE), 1)))
    (leak,) = find_leaks([INSTANCE], {"upstream body": blob})
    assert leak.form.startswith("gzip")
    assert "json" in leak.form


def test_json_unescape_one_level() -> None:
    assert json_unescape(r"\"a\\\"b\/c\u0069\n") == '"a\\"b/ci\n'
    assert json_unescape(r"\q stays") == r"\q stays"


def test_masked_bodies_are_not_flagged(masker: Masker) -> None:
    text = (
        f'{{"OwnerId": "{ACCOUNT}"}} instance {INSTANCE} aws_secret_access_key = {SECRET} host={HOST} '
        "arn:aws:iam::123456789012:role/Admin"
    )
    for body in (_body(text), _body(text + " " + _escaped_json("plain words", 2))):
        masked, result = mask_request(body, masker)
        assert result.total >= 4
        blobs = {
            "body": masked,
            "gzip": gzip.compress(masked),
            "base64": base64.b64encode(masked),
            "utf-16": masked.decode().encode("utf-16-le"),
            "url": quote(masked.decode()),
        }
        assert find_leaks([*ORIGINALS, "123456789012"], blobs) == []


def test_no_false_positive_from_joins_or_numbers() -> None:
    blob = json.dumps(
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "i-0123"}, {"type": "image"}]}
            ],
            "n": [4.8e11, 1e400, 123.5],
        }
    )
    assert find_leaks([INSTANCE, ACCOUNT], {"body": blob}) == []


def test_decoded_forms_are_bounded() -> None:
    bomb = gzip.compress(b"\x00" * (64 * 1024 * 1024))
    total = sum(len(text) for _form, text in decoded_forms(bomb))
    assert total <= 3 * 32 * 1024 * 1024
