"""Find planted original identifiers in whatever left the gateway, in every form a reader could decode.

A leak test plants known originals in a request and then searches everything that the upstream
recorded (request line, headers, body) and every log line of the gateway and the plugin server.
Searching the raw bytes is not enough: an upstream (or a model) reads through escaping, encodings and
compression, so :func:`find_leaks` searches each blob in these forms too, nested to any depth up to
``max_depth`` transformations:

- URL-decoded (``%XX``, and ``+`` as a space or as itself), repeatedly;
- JSON string escapes undone (``\\uXXXX``, ``\\"``, ``\\/``, ``\\\\``, ``\\n`` ...), repeatedly;
- the strings of a JSON document, each on its own, and the values under one key in the objects of
  one list joined (an identifier split across adjacent text blocks), and JSON numbers written as
  fractions or with exponents read as integers (``4.83920175526e11``);
- every base64-looking run decoded, standard and URL-safe alphabets, at each of the four alignments;
- bytes read as UTF-16 (LE/BE) and UTF-32 (LE/BE), and with NUL bytes removed;
- gzip, zlib (HTTP ``deflate``), raw deflate and brotli streams decompressed (bounded output).

A hit names the original, the blob it was in and the chain of decodings that revealed it. Only the
originals given are looked for, so a masked body (tokens in place of originals) yields nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote, unquote_plus

import brotli

MAX_DEPTH = 8
MAX_OUTPUT = 32 * 1024 * 1024
"""Cap on one decompressed stream, and on the total size of all forms of one blob."""
_MIN_B64 = 12
_MAX_B64_RUNS = 2000

_JSON_ESCAPE = re.compile(r'\\(u[0-9a-fA-F]{4}|["\\/bfnrt])')
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_B64_RUN = re.compile(rf"[A-Za-z0-9+/_-]{{{_MIN_B64},}}={{0,2}}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Leak:
    original: str
    where: str
    """The blob's name, e.g. ``upstream body``."""
    form: str
    """The decodings applied, outermost first, e.g. ``gzip > json-unescape > base64``."""

    def __str__(self) -> str:
        return f"{self.original!r} in {self.where} ({self.form})"


def find_leaks(
    originals: Iterable[str], blobs: Mapping[str, bytes | str], max_depth: int = MAX_DEPTH
) -> list[Leak]:
    """Every (original, blob) pair where the original shows in some decoded form of the blob (the first
    form found for each pair)."""
    wanted = [o for o in dict.fromkeys(originals) if o]
    leaks: list[Leak] = []
    for where, blob in blobs.items():
        missing = list(wanted)
        for form, text in decoded_forms(blob, max_depth):
            for original in list(missing):
                if original in text:
                    leaks.append(Leak(original, where, form))
                    missing.remove(original)
            if not missing:
                break
    return leaks


def assert_no_leaks(originals: Iterable[str], blobs: Mapping[str, bytes | str], context: str = "") -> None:
    leaks = find_leaks(originals, blobs)
    if leaks:
        lines = "\n".join(f"  - {leak}" for leak in leaks)
        raise AssertionError(f"planted originals leaked{': ' + context if context else ''}\n{lines}")


def decoded_forms(blob: bytes | str, max_depth: int = MAX_DEPTH) -> Iterator[tuple[str, str]]:
    """``(chain of decodings, text)`` for the blob and each form decoded from it (each distinct text
    once)."""
    seen: set[bytes] = set()
    budget = MAX_OUTPUT
    work: list[tuple[str, int, bytes | str]] = [("raw", 0, blob)]
    while work:
        label, depth, item = work.pop(0)
        digest = hashlib.blake2b(item if isinstance(item, bytes) else item.encode("utf-8", "surrogatepass"))
        key = (b"b" if isinstance(item, bytes) else b"s") + digest.digest()
        if key in seen or budget <= 0:
            continue
        seen.add(key)
        budget -= len(item)
        if isinstance(item, bytes):
            children = _from_bytes(item)
        else:
            yield label, item
            children = _from_text(item)
        if depth >= max_depth:
            continue
        for name, child in children:
            if child and child != item:
                work.append((name if label == "raw" else f"{label} > {name}", depth + 1, child))


# -- bytes -> forms --------------------------------------------------------------------------------
def _from_bytes(data: bytes) -> Iterator[tuple[str, bytes | str]]:
    yield "utf-8", data.decode("utf-8", "replace")
    if b"\x00" in data:
        yield "nul-stripped", data.replace(b"\x00", b"")
        for codec, width in (("utf-16-le", 2), ("utf-16-be", 2), ("utf-32-le", 4), ("utf-32-be", 4)):
            for skip in range(width):
                yield f"{codec}@{skip}", data[skip:].decode(codec, "replace")
    yield from _decompressed(data)


def _decompressed(data: bytes) -> Iterator[tuple[str, bytes]]:
    starts = [m.start() for m in re.finditer(b"\x1f\x8b\x08", data)][:16]
    for start in starts:
        out = _inflate(data[start:], 16 + zlib.MAX_WBITS)
        if out:
            yield "gzip", out
    for name, wbits in (("zlib", zlib.MAX_WBITS), ("raw-deflate", -zlib.MAX_WBITS)):
        out = _inflate(data, wbits)
        if out:
            yield name, out
    try:
        out = brotli.Decompressor().process(data, output_buffer_limit=MAX_OUTPUT)
    except brotli.error:
        pass
    else:
        if out:
            yield "brotli", out


def _inflate(data: bytes, wbits: int) -> bytes:
    """Whatever a (possibly truncated) stream inflates to, up to MAX_OUTPUT."""
    try:
        return zlib.decompressobj(wbits).decompress(data, MAX_OUTPUT)
    except zlib.error:
        return b""


# -- text -> forms ---------------------------------------------------------------------------------
def _from_text(text: str) -> Iterator[tuple[str, bytes | str]]:
    if "%" in text:
        yield "url-decode", unquote(text, errors="surrogateescape")
    if "+" in text or "%" in text:
        yield "url-decode-plus", unquote_plus(text, errors="surrogateescape")
    if "\\" in text:
        yield "json-unescape", json_unescape(text)
    numbers = _integral_numbers(text)
    if numbers:
        yield "numbers", numbers
    stripped = text.strip().lstrip("\ufeff")
    if stripped[:1] in ("{", "["):
        yield from _json_views(stripped)
    if "\x00" in text:
        yield "nul-stripped", text.replace("\x00", "")
    yield from _base64_runs(text)


def json_unescape(text: str) -> str:
    """One level of JSON string escapes undone, wherever they stand (unknown escapes are kept)."""

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code[0] == "u":
            return chr(int(code[1:], 16))
        return _SIMPLE_ESCAPES[code]

    return _JSON_ESCAPE.sub(one, text)


def _integral_numbers(text: str) -> str:
    """The numbers written with a fraction or an exponent whose value is an integer, as integers
    (``483920175526.0``, ``4.83920175526e11``), one per line."""
    out = []
    for m in _NUMBER.finditer(text):
        written = m.group()
        if not any(c in written for c in ".eE"):
            continue
        try:
            value = Decimal(written)
        except InvalidOperation:
            continue
        if value.is_finite() and abs(value.adjusted()) <= 40 and value == value.to_integral_value():
            out.append(str(int(value)))
    return "\n".join(out)


def _json_views(text: str) -> Iterator[tuple[str, str]]:
    """The strings of a JSON document (lenient: NaN, Infinity, big numbers, control characters),
    each on its own, and the joined values of each key across the objects of each list."""
    try:
        doc = json.loads(text, strict=False, parse_constant=lambda _c: None, parse_float=str, parse_int=str)
    except (ValueError, RecursionError):
        return
    strings: list[str] = []
    joined: list[str] = []
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                strings.append(key)
                (strings.append if isinstance(value, str) else stack.append)(value)
        elif isinstance(node, list):
            by_key: dict[str, list[str]] = {}
            for value in node:
                if isinstance(value, str):
                    by_key.setdefault("", []).append(value)
                elif isinstance(value, dict):
                    for key, inner in value.items():
                        if isinstance(inner, str):
                            by_key.setdefault(key, []).append(inner)
                if isinstance(value, str):
                    strings.append(value)
                else:
                    stack.append(value)
            joined.extend("".join(values) for values in by_key.values() if len(values) > 1)
    if joined:
        yield "json-joined", "\n".join(joined)
    for s in strings:
        if len(s) >= 4:
            yield "json-string", s


def _base64_runs(text: str) -> Iterator[tuple[str, bytes]]:
    for i, m in enumerate(_B64_RUN.finditer(text)):
        if i >= _MAX_B64_RUNS:
            break
        run = m.group().rstrip("=")
        for skip in range(4):
            part = run[skip:]
            part = part[: len(part) - len(part) % 4 if len(part) % 4 == 1 else len(part)]
            if len(part) < _MIN_B64 - 4:
                break
            padded = part + "=" * (-len(part) % 4)
            for name, alphabet in (("base64", None), ("base64url", b"-_")):
                try:
                    out = base64.b64decode(padded, altchars=alphabet, validate=True)
                except (binascii.Error, ValueError):
                    continue
                yield f"{name}@{skip}", out
