"""Base64 inside text: where it is, what it decodes to, and the same encoding of new content.

People paste base64 that holds text: a Kubernetes Secret's ``data`` (``AWS_SECRET_ACCESS_KEY:
<base64>``), EC2 user data (``describe-instance-attribute --attribute userData``), a CloudWatch Logs
subscription record (``{"awslogs": {"data": "H4sI..."}}``, gzip then base64), a JWT's payload
(base64url), a ``data:`` URL. A model decodes base64 as it reads, so an identifier inside it reaches
the upstream as surely as one written out. The engine (engine.py) masks the text such a run decodes
to and puts the masked text back in the same encoding; this module only finds and codes runs. It
knows nothing about identifiers. Decoded bytes that are not text are tried as gzip, zlib or raw
deflate and brotli (a model does not read them, but whatever decompresses the request does).

A run is at least ``MIN_RUN`` characters of one base64 alphabet (standard ``+/`` or URL-safe
``-_``), its padding, and the lines that continue it when it is wrapped (as ``base64`` and PEM wrap
at 64 or 76). Shorter stretches are words, IDs and hashes: 24 characters are 18 bytes. A shorter run
(``MIN_SHORT``) is read only where it is a whole value. Each run is read at the first of its four
alignments that gives text, or past a short word glued before it; one that gives no text is
returned with its bytes (only where they may hold an identifier), for the caller to check as opaque
data. Finding runs costs a byte translation and a substring search per text (the run characters
mapped to one byte), so no regex walks a character class over ordinary text; a run of up to
``_CACHED_BODY`` characters is read once per process.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, NamedTuple

import brotli

from . import requestcoding
from .errors import BodyTooLargeError, InvalidEncodingError

try:
    import hyperscan
except ImportError:  # pragma: no cover - no wheel for this platform
    hyperscan = None

MIN_RUN = 24
"""The fewest characters of a run found anywhere (see the module's docstring)."""
MIN_SHORT = 10
"""The fewest characters (padding aside) of a run that is a whole value: a text (a JSON string) of
base64 only, or the value after a key (``AWS_ACCOUNT_ID: NDgzOTIwMTc1NTI2``) in a text that speaks of
secrets, base64 or decoding (a Kubernetes Secret, an env file). Base64 of an account ID is 16
characters, of a private IP address 11 and padding; looking for such short runs everywhere would
try every long word."""
_SHORT_TEXT = 32
_WHOLE = re.compile(r"[ \t\r\n\"']*([A-Za-z0-9+/_-]{10,23})={0,2}[ \t\r\n\"']*")
_SHORT_VALUE = re.compile(
    r"(?:[:=]|base64,)[ \t]*(?:\\?[\"'])?([A-Za-z0-9+/_-]{10,23})(?==?=?(?![A-Za-z0-9+/_=-]))"
)  # (a quote after the key may be escaped: JSON inside a JSON string)
_HINTS = ("secret", "base64", "decode")
"""Words (any case) of a text that speaks of secrets or base64, where short values are decoded."""


class _RunSearch:
    """Where the runs of ``MIN_RUN`` or more base64 characters of a text's bytes start, in order, and
    whether the text holds one of ``_HINTS`` (any case): one Hyperscan scan (a few us for 8 KB; each run
    is reported once, at its start), or, without the hyperscan package, a byte translation and
    substring searches (``_plain_search``)."""

    def __init__(self) -> None:
        self._database: Any = None
        self._local = threading.local()

    def __call__(self, raw: bytes) -> tuple[list[int], bool]:
        if hyperscan is None:  # pragma: no cover - exercised where the package has no wheel
            return _plain_search(raw)
        if self._database is None:  # (two threads may both compile one: either is right)
            database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            hint = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH
            database.compile(
                # a run's first MIN_RUN characters, after a character that is not one (or the start):
                # one match per run, whatever its length
                expressions=[f"(?:^|[^{_RUN_CLASS}])[{_RUN_CLASS}]{{{MIN_RUN}}}".encode()]
                + [hint.encode() for hint in _HINTS],
                ids=list(range(1 + len(_HINTS))),
                elements=1 + len(_HINTS),
                flags=[0] + [hint] * len(_HINTS),
            )
            self._database = database
        scratch = getattr(self._local, "scratch", None)
        if scratch is None or self._local.database is not self._database:
            scratch = self._local.scratch = hyperscan.Scratch(self._database)
            self._local.database = self._database
        found: list[int] = []
        self._database.scan(raw, match_event_handler=_note, context=found, scratch=scratch)
        if -1 not in found:
            return found, False
        return [at for at in found if at >= 0], True


def _note(pattern: int, start: int, end: int, flags: int, found: list[int]) -> None:
    found.append(end - MIN_RUN if pattern == 0 else -1)  # (a hint reports once: HS_FLAG_SINGLEMATCH)


def _plain_search(raw: bytes) -> tuple[list[int], bool]:
    """``_RunSearch`` without Hyperscan: the characters of either alphabet mapped to one byte, then
    each stretch of ``MIN_RUN`` or more by a substring search; the hints in the lower-cased bytes."""
    starts: list[int] = []
    mapped = raw.translate(_EITHER)
    at = mapped.find(_NEEDLE)
    while at >= 0:
        starts.append(at)
        at = mapped.find(_NEEDLE, _RUN_END.match(mapped, at).end())  # type: ignore[union-attr]
    lowered = raw.lower()
    return starts, any(hint.encode() in lowered for hint in _HINTS)


_search = _RunSearch()
MAX_DECOMPRESSED = 16 * 1024 * 1024
"""The most bytes a compressed run is decompressed to (one that gives more is refused, as a request
body is: BodyTooLargeError)."""

_STANDARD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_RUN_CLASS = "A-Za-z0-9+/_-"
_RUN_CHARS = re.compile(f"[{_RUN_CLASS}]+")


def _table(alphabet: bytes) -> bytes:
    """A ``bytes.translate`` table: the alphabet's characters to ``a``, every other byte to a space."""
    table = bytearray(b" " * 256)
    for byte in alphabet:
        table[byte] = ord("a")
    return bytes(table)


_EITHER = _table(_STANDARD + b"-_")
_SINGLE = ((re.compile("[A-Za-z0-9+/]+"), None), (re.compile("[A-Za-z0-9_-]+"), b"-_"))
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_NEEDLE = b"a" * MIN_RUN
_RUN_END = re.compile(b"a*")
_CONTINUED = re.compile(r"(\r?\n)([A-Za-z0-9+/_-]+)(={0,2})")
_PRINTABLE_SHARE = 0.95
_BLANKS = {ord("\t"): " ", ord("\n"): " ", ord("\r"): " "}
_PRINTABLE_RUN = re.compile(rb"[\x21-\x7e]{8,}")
"""Eight printable ASCII characters in a row: the shortest identifier (``10.0.0.1``) is no shorter."""


if sys.version_info >= (3, 11):

    def _a2b(coded: bytes) -> bytes:
        return binascii.a2b_base64(coded, strict_mode=True)

else:  # (Python 3.10's binascii has no strict mode; the alphabet check is the same)

    def _a2b(coded: bytes) -> bytes:
        return base64.b64decode(coded, validate=True)


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


# how text goes back into a run of each coding (deflate: raw, which any deflate reader reads)
_COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    requestcoding.IDENTITY: bytes,
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "deflate": _deflate,
    "br": brotli.compress,
}


class Run(NamedTuple):
    start: int
    end: int
    """The run's span in the text (padding and continued lines included)."""
    skip: int
    """Characters at its start that are not part of the base64 (its alignment)."""
    altchars: bytes | None
    """``b"-_"`` for the URL-safe alphabet, else None."""
    padded: bool
    wrap: tuple[str, int, int]
    """The line break, the first line's length and the others' of a wrapped run (("", 0, 0): one
    line)."""
    coding: str
    """The compression of the decoded bytes (``gzip``, ``deflate``, ``br``: requestcoding.py), or
    ``identity``."""
    text: str | None
    """What it decodes to, when that is text (decompressed first), else None."""
    data: bytes
    """The decoded (and decompressed) bytes; for a run that is not text, those of each alignment
    that decodes, a NUL byte between them."""
    charset: str = "utf-8"
    """How ``text`` is written in the bytes: UTF-8, or UTF-16LE (``powershell -EncodedCommand``)."""


def runs(text: str, wanted: Callable[[int, int], bool] | None = None) -> list[Run]:
    """Every base64 run of ``text`` that decodes, in order (see the module's docstring). ``wanted``,
    if given, is asked first about each stretch of base64 characters (its span; the first line of a
    wrapped run): one it declines is not decoded."""
    found: list[Run] = []
    if len(text) < MIN_SHORT:
        return found
    raw = text.encode("ascii", "replace")  # (one byte per character: the offsets are the text's)
    starts, hinted = _search(raw)
    end = 0
    for at in starts:
        if at < end:  # (inside a run read already: its padding or a continued line)
            continue
        end = _RUN_CHARS.match(text, at).end()  # type: ignore[union-attr]
        if wanted is None or wanted(at, end):
            for run in _decoded_runs(text, at, end):
                found.append(run)
                end = max(end, run.end)
    short: list[Run] = []
    whole = _WHOLE.fullmatch(text) if len(text) <= _SHORT_TEXT else None  # base64 and nothing else
    if whole is not None:
        spans = [whole.span(1)]
    elif hinted:
        spans = [m.span(1) for m in _SHORT_VALUE.finditer(text)]
    else:
        spans = []
    for at, end in spans:
        if wanted is None or wanted(at, end):
            short += _decoded_runs(text, at, end)
    return sorted(found + short) if short else found


def _decoded_runs(text: str, at: int, end: int) -> Iterator[Run]:
    """The runs of the stretch of base64 characters ``text[at:end]`` that decode (``_decoded_run``),
    one per alphabet. A run of one line, short enough to be read once per process
    (``_short_readings``), that gives no reading (a hyphenated name: ``web-server-security-group``)
    is passed over without ``_decoded_run``'s look for padding and continued lines: the usual case."""
    for start, stop, altchars in _alphabets(text[at:end], at):
        if (
            stop - start <= _CACHED_BODY
            and text[stop : stop + 1] not in _MAY_CONTINUE
            and not _short_readings(text[start:stop], altchars)
        ):
            continue
        run = _decoded_run(text, start, stop, altchars)
        if run is not None:
            yield run


_MAY_CONTINUE = frozenset("=\r\n")
"""Characters after a stretch that may continue its run (padding, a wrapped line)."""


def _alphabets(stretch: str, at: int) -> list[tuple[int, int, bytes | None]]:
    """The runs of one alphabet in a stretch of base64 characters at ``at``: the stretch itself, but
    where it mixes ``+/`` with ``-_`` (then each alphabet's longest runs, which may overlap)."""
    url = "-" in stretch or "_" in stretch
    if not url or not ("+" in stretch or "/" in stretch):
        return [(at, at + len(stretch), b"-_" if url else None)]
    return [
        (at + m.start(), at + m.end(), altchars)
        for pattern, altchars in _SINGLE
        for m in pattern.finditer(stretch)
        if m.end() - m.start() >= MIN_RUN
    ]


def _decoded_run(text: str, start: int, end: int, altchars: bytes | None) -> Run | None:
    """The run of one alphabet at ``text[start:end]``, with its padding and continued lines, read at
    the first alignment that gives text (else with the bytes of every alignment whose bytes may hold
    an identifier); None if there is none. A line after the run that only looks like its last line
    (a word under a line of base64) is left out again if the run gives no text with it."""
    pad = 0
    while pad < 2 and text.startswith("=", end + pad):
        pad += 1
    # (each line: its text, where it ends with its padding, its padding, the line break before it)
    lines = [(text[start:end], end + pad, pad, "")]
    first = width = end - start
    if not pad:  # wrapped: lines of one length (the first may be longer: a word glued before it)
        stop = end
        while True:
            m = _CONTINUED.match(text, stop)
            if m is None or len(m[2]) > width:
                break
            if len(lines) == 1 and len(m[2]) % 4 == 0:
                width = len(m[2])
            line = m[2]
            if altchars is None and ("-" in line or "_" in line):  # (a first line of letters and digits only)
                if any("+" in b[0] or "/" in b[0] for b in lines):
                    break
                altchars = b"-_"
            elif altchars is not None and ("+" in line or "/" in line):
                break
            stop = m.end()
            lines.append((line, stop, len(m[3]), m[1]))
            if m[3] or len(line) < width:
                break
    opaque: list[bytes] = []
    # all the lines; all but the last (a word under the base64 that only looked like its last line);
    # the first alone (a run under another): no more, so a long wrapped run of binary data is read
    # in linear time
    for count in sorted({len(lines), max(1, len(lines) - 1), 1}, reverse=True):
        body = "".join(line for line, *_ in lines[:count])
        _, stop, last_pad, _ = lines[count - 1]
        wrap = (lines[1][3], first, width) if count > 1 else ("", 0, 0)
        readings = _short_readings(body, altchars) if len(body) <= _CACHED_BODY else _readings(body, altchars)
        for skip, coding, data, decoded, charset in readings:
            if count > 1 and skip >= first:  # (a run on the first line, another under it: two runs)
                continue
            if decoded is not None:
                return Run(start, stop, skip, altchars, bool(last_pad), wrap, coding, decoded, data, charset)
            if count == len(lines) or count == 1:
                opaque.append(data)
    if not opaque:
        return None
    # no alignment gives text: the bytes of those that may hold an identifier, for the caller's check
    _, stop, last_pad, _ = lines[-1]
    data = b"\0".join(opaque)
    return Run(start, stop, 0, altchars, bool(last_pad), ("", 0, 0), requestcoding.IDENTITY, None, data)


_CACHED_BODY = 64
"""Runs up to this long are read once per process (``_short_readings``): names, IDs and keys that
only look like base64 recur in every request of a conversation."""
_GZIP_MAGIC = b"\x1f\x8b\x08"
_GLUED = (3, 6, 9, 12)
"""Bytes of a word glued before the base64 (four characters each) looked past for text."""


def _readings(body: str, altchars: bytes | None) -> Iterator[tuple[int, str, bytes, str | None, str]]:
    """For each alignment of ``body`` that decodes to bytes that may hold an identifier (eight
    printable ASCII characters in a row, or UTF-16LE text): the characters before the base64, the
    compression, the bytes, the text they are (None if they are not text) and its charset. Where a
    word is glued before the base64, the bytes it decodes to are looked past: for gzip's magic bytes
    anywhere, for text within ``_GLUED`` bytes."""
    for skip in range(4):
        part = body[skip:]
        usable = len(part) - 1 if len(part) % 4 == 1 else len(part)  # (a lone sixth of a byte)
        if usable < MIN_SHORT:
            return
        coded = (part[:usable] + "=" * (-usable % 4)).encode("ascii")
        try:
            data = _a2b(coded.translate(_TO_STANDARD) if altchars else coded)
        except binascii.Error:
            continue
        coding, plain = _decompressed(data, headerless=False)  # (gzip and zlib, by their headers)
        text = _as_text(plain)
        if text is None and skip == 0 and coding == requestcoding.IDENTITY and not _has_header(data):
            coding, plain = _decompressed(data, headerless=True)  # (text is not tried as compressed)
            text = _as_text(plain) if coding != requestcoding.IDENTITY else None
        printable = _PRINTABLE_RUN.search(plain) is not None
        decoded = text if printable else None
        if decoded is None and len(plain) % 2 == 0 and plain[1::2].count(0) * 10 >= len(plain) * 4:
            wide = _as_utf16(plain)  # (mostly ASCII written as UTF-16LE: every other byte NUL)
            if wide is not None:
                yield skip, coding, plain, wide, _UTF16
                continue
        if decoded is None and coding == requestcoding.IDENTITY:
            glued = _past_glued_word(data)
            if glued is not None:
                drop, coding, plain, decoded = glued
                yield skip + drop // 3 * 4, coding, plain, decoded, "utf-8"
                continue
        if printable:
            yield skip, coding, plain, decoded, "utf-8"


def _past_glued_word(data: bytes) -> tuple[int, str, bytes, str] | None:
    """Where a word is glued before the base64, what its bytes decode to past it: gzip (its magic
    bytes, anywhere at a whole group) or text (within ``_GLUED`` bytes); the bytes dropped, the
    compression, the bytes and their text. None if neither."""
    at = data.find(_GZIP_MAGIC, 1)
    while at > 0 and at % 3:
        at = data.find(_GZIP_MAGIC, at + 1)
    if at > 0:
        coding, plain = _decompressed(data[at:], headerless=False)
        decoded = _as_text(plain) if coding != requestcoding.IDENTITY else None
        if decoded is not None and _PRINTABLE_RUN.search(plain) is not None:
            return at, coding, plain, decoded
    for drop in _GLUED:
        decoded = _as_text(data[drop:])
        if decoded is not None and _PRINTABLE_RUN.search(data, drop) is not None:
            return drop, requestcoding.IDENTITY, data[drop:], decoded
    return None


_UTF16 = "utf-16-le"


def _as_utf16(data: bytes) -> str | None:
    """``data`` as UTF-16LE text (Windows, ``powershell -EncodedCommand``) with an identifier's room
    (eight printable ASCII characters in a row), if it is that and nearly all printable."""
    try:
        text = data.decode(_UTF16)
    except UnicodeDecodeError:
        return None
    decoded = _as_text(text.encode("utf-8"))
    return decoded if decoded is not None and _PRINTABLE_RUN.search(data[::2]) is not None else None


@lru_cache(maxsize=4096)
def _short_readings(body: str, altchars: bytes | None) -> tuple[tuple[int, str, bytes, str | None, str], ...]:
    return tuple(_readings(body, altchars))


def _has_header(data: bytes) -> bool:
    return data[:2] == b"\x1f\x8b" or requestcoding.is_zlib(data)


def _decompressed(data: bytes, headerless: bool) -> tuple[str, bytes]:
    """``data`` decompressed, and how: gzip (its magic bytes), zlib (its header), and if
    ``headerless`` (a run read as written, not at a later alignment) raw deflate or brotli, which
    have no header and are only tried; ``identity`` and the bytes as they are when none of them
    reads all of it. Decompression stops at ``MAX_DECOMPRESSED`` bytes (a bomb is refused)."""
    if data[:2] == b"\x1f\x8b":  # (the checks of _has_header)
        codings: tuple[str, ...] = ("gzip",)
    elif requestcoding.is_zlib(data):
        codings = ("deflate",)
    elif headerless:
        codings = ("deflate", "br")
    else:
        return requestcoding.IDENTITY, data
    for coding in codings:
        try:
            return coding, requestcoding.decode(data, coding, MAX_DECOMPRESSED)
        except InvalidEncodingError:
            continue
        except BodyTooLargeError as exc:
            raise BodyTooLargeError(
                f"base64 data in the request decompresses to more than {MAX_DECOMPRESSED} bytes; "
                "it was not forwarded"
            ) from exc
    return requestcoding.IDENTITY, data


def _as_text(data: bytes) -> str | None:
    """``data`` as text, if it is UTF-8 and nearly all of it printable (or blanks)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text:
        return None
    plain = text.translate(_BLANKS)
    if plain.isprintable():  # (the usual case, at C speed)
        return text
    readable = len(plain) - sum(1 for c in plain if not c.isprintable())
    return text if readable >= _PRINTABLE_SHARE * len(text) else None


_READABLE = re.compile(rb"[\x20-\x7e\t]{8,}")


_FIELD_BYTES = 2
"""Leading characters of a stretch that may be a binary field's bytes glued to the text after them."""


def as_seen(data: bytes) -> str:
    """What a reader sees as text in binary data: its stretches of eight or more printable ASCII
    characters, one per line (an identifier, with the key before it, stands in one; the noise
    between them, read as letters and spaces, would make prose rules match random bytes). Each
    stretch also stands without its first one and two characters, on lines of their own: a binary
    format's tag and length bytes can be printable (protobuf's length 50 is "2"), and glued to the
    text after them they would hide an identifier that starts it (``2483920175526:/ecs/app``, in a
    CloudWatch Logs Insights ``@ptr``)."""
    lines = []
    for m in _READABLE.finditer(data):
        stretch = m.group().decode("ascii")
        lines.append(stretch)
        lines += (stretch[cut:] for cut in range(1, _FIELD_BYTES + 1) if len(stretch) - cut >= 8)
    return "\n".join(lines)


def digits_seen(data: bytes) -> bool:
    """Whether a reader sees twelve digits or more in a row in binary data (an account ID, whatever
    binary field's bytes stand around it), other than a time as ASN.1 writes one (a certificate's
    validity: YYMMDDhhmmssZ, YYYYMMDDhhmmssZ)."""
    return any(data[m.end() : m.end() + 1] != b"Z" for m in _DIGIT_RUN.finditer(data))


_DIGIT_RUN = re.compile(rb"[0-9]{12,}")


def encode(run: Run, source: str, text: str) -> str:
    """What stands in ``run``'s place in ``source`` with ``text`` as its content, coded as the run was:
    the characters before its alignment kept, the same alphabet, padding, compression and line
    wrapping."""
    data = _COMPRESS[run.coding](text.encode(run.charset))
    coded = base64.b64encode(data, altchars=run.altchars).decode("ascii")
    out = source[run.start : run.start + run.skip] + coded
    if not run.padded:
        out = out.rstrip("=")
    breaker, first, width = run.wrap
    if width:
        out = breaker.join([out[:first], *(out[i : i + width] for i in range(first, len(out), width))])
    return out
