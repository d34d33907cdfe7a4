"""Request Content-Encoding: decoded with a limit on the decoded size, refused when unknown or broken."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest

from aws_masker.errors import BodyTooLargeError, InvalidEncodingError, UnsupportedEncodingError
from aws_masker.requestcoding import coding_of, decode

DATA = b'{"messages":[{"role":"user","content":"i-0123456789abcdef0"}]}' * 50


def raw_deflate(data: bytes, level: int = 6) -> bytes:
    packer = zlib.compressobj(level=level, wbits=-15)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("coding", "packed"),
    [
        ("gzip", gzip.compress(DATA)),
        ("x-gzip", gzip.compress(DATA)),
        ("gzip", gzip.compress(DATA[:100]) + gzip.compress(DATA[100:])),  # two members
        ("deflate", zlib.compress(DATA)),  # RFC 9110: a zlib stream
        ("deflate", raw_deflate(DATA)),  # what some clients send
        ("deflate", raw_deflate(DATA, level=0)),  # stored blocks: valid UTF-8 as it stands
        ("br", brotli.compress(DATA)),
    ],
)
def test_each_coding_decodes(coding: str, packed: bytes) -> None:
    assert decode(packed, coding_of([coding]), len(DATA)) == DATA


@pytest.mark.parametrize(
    ("coding", "pack"), [("gzip", gzip.compress), ("deflate", zlib.compress), ("br", brotli.compress)]
)
def test_one_byte_past_the_limit_is_refused(coding: str, pack: object) -> None:
    with pytest.raises(BodyTooLargeError):
        decode(pack(DATA), coding, len(DATA) - 1)  # type: ignore[operator]


def test_a_bomb_is_refused_without_inflating_it() -> None:
    bomb = brotli.compress(b"\0" * 100_000_000)  # a few hundred bytes
    with pytest.raises(BodyTooLargeError):
        decode(bomb, "br", 1_000_000)


@pytest.mark.parametrize(
    ("coding", "packed"),
    [
        ("gzip", b"not gzip"),
        ("gzip", gzip.compress(DATA)[:-6]),  # truncated
        ("gzip", gzip.compress(DATA) + b"junk"),
        ("deflate", zlib.compress(DATA) + b"junk"),
        ("br", brotli.compress(DATA)[:-2]),
        ("br", b"\xff\xfe\xfd"),
    ],
)
def test_broken_data_is_refused_as_invalid(coding: str, packed: bytes) -> None:
    with pytest.raises(InvalidEncodingError) as err:
        decode(packed, coding, 10 * len(DATA))
    assert (err.value.status, err.value.code) == (400, "2004")


@pytest.mark.parametrize("values", [["zstd"], ["compress"], ["gzip, br"], ["gzip", "gzip"]])
def test_unknown_and_stacked_codings_are_refused(values: list[str]) -> None:
    with pytest.raises(UnsupportedEncodingError) as err:
        coding_of(values)
    assert (err.value.status, err.value.code) == (415, "2008")


def test_identity_and_none() -> None:
    assert coding_of([]) == coding_of(["identity"]) == coding_of([" Identity "]) == "identity"
    assert decode(DATA, "identity", 1) == DATA
