"""The request's other channels: header values, the query string and the path.

A client can put an identifier anywhere in a request, not only in its body. Header values and query
arguments are masked like the body (one shared token map); what may not be rewritten is refused:

* **credential headers** (``x-api-key``, ``authorization``, ``proxy-authorization``) and **Kong's
  proxy headers** (``host``, ``x-forwarded-*``, ``x-real-ip``, ``via``) are not masked here: the first
  must reach the API byte for byte, the second are set or worked out by Kong before any plugin runs
  (a plugin cannot change what Kong sends there); those that carry the client's own text on
  (``x-forwarded-for``, ``via``) are checked by forwarded.py, which refuses any identifier but an
  address;
* **protocol headers** (content negotiation, ``user-agent``, ``anthropic-version``/``-beta``, ...)
  must reach the API unchanged: they are scanned, and an identifier in one refuses the request;
* **header names** and **the path** (percent-decoded) are scanned, and an identifier there refuses
  the request: a plugin can set header values only, and Kong copies the client's path into
  ``X-Forwarded-Path`` before any plugin runs;
* **every other header** (``anthropic-metadata``, any ``x-*`` of the client's) and every query
  argument (name and value, percent-decoded) is masked.

It knows HTTP, nothing about Kong.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, unquote_plus

from . import echo
from .engine import Masker, MaskResult
from .errors import IdentifierInRequestLineError
from .restore import token_kind
from .tokens import KIND_CATEGORIES

UNSCANNED = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "host",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-path",
        "x-forwarded-prefix",
        "x-real-ip",
        "via",
    }
)
PROTOCOL = frozenset(
    {
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "anthropic-beta",
        "anthropic-version",
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "expect",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
    }
)
_KNOWN_NAMES = UNSCANNED | PROTOCOL
# an RFC 2047 encoded word (=?utf-8?b?...?=, =?utf-8?q?...?=): a reader (or a mail library) decodes it
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,64})\?([bBqQ])\?([^?\s]*)\?=")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def decoded_words(value: str) -> str | None:
    """``value`` with its RFC 2047 encoded words decoded (as UTF-8, anything else replaced), or None
    when it has none. Scanned besides the value as it is: an identifier in an encoded word cannot be
    masked in place, so it refuses the request."""
    if "=?" not in value:
        return None
    parts = _ENCODED_WORD.split(value)
    if len(parts) == 1:
        return None
    out = []
    for k in range(0, len(parts) - 1, 4):
        out.append(parts[k])
        coding, text = parts[k + 2], parts[k + 3]
        if coding in "bB":
            text = text.rstrip("=")
            text = text[: len(text) - (len(text) % 4 == 1)]
            try:
                data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_")
            except (binascii.Error, ValueError):
                data = b""
        else:
            data = _Q_ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), text.replace("_", " ").encode("utf-8"))
        out.append(" " + data.decode("utf-8", errors="replace") + " ")
    out.append(parts[-1])
    return "".join(out)


# how a masked query part is written back: tokens are ASCII letters, digits and "_"
_QUERY_SAFE = "-._~!$'()*,;:@/?"


@dataclass
class ChannelResult:
    """What masking the request line and headers did; empty when nothing was found."""

    headers: dict[str, list[str]] = field(default_factory=dict)
    """Headers to set upstream (every value of each header that had an identifier)."""
    raw_query: str | None = None
    """The masked query string, or None when it is unchanged."""
    result: MaskResult = field(default_factory=MaskResult)


def _values(value: object) -> list[str]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return [value] if isinstance(value, str) else []


def mask_channels(
    masker: Masker,
    headers: Mapping[str, object],
    path_with_query: str,
    body_tokens: Mapping[str, str] | None = None,
) -> ChannelResult:
    """Mask header values and query arguments; refuse an identifier in the path or a protocol header.

    ``headers`` as ``kong.request.get_headers()`` gives them (lower-case names, a value or a list of
    values); ``path_with_query`` as ``kong.request.get_path_with_query()`` (the raw request target).
    ``body_tokens`` (token -> original) are the body's: a name the body's scan found by its context
    (a bucket under ``"Bucket"``) is masked here too where it stands bare (echo.py), with its token.
    """
    texts: list[str] = []
    contexts: list[str] = []
    # (kind, key, index): kind "h" a masked header value, "p" a protocol header value or the path,
    # "q" a query part
    slots: list[tuple[str, str, int]] = []
    for name, value in headers.items():
        # a name cannot be masked (Kong can only set values): refused if found. Kong hands it over
        # lower-cased and sends it upstream as the client wrote it, so its upper-case form is scanned
        # too (access key IDs, unique IDs and resource IDs are upper-case)
        if name not in _KNOWN_NAMES:  # (a name of those lists is one of their words: nothing to find)
            for form in dict.fromkeys((name, name.upper())):
                texts.append(form)
                contexts.append("")
                slots.append(("p", "", 0))
        if name in UNSCANNED:
            continue
        kind = "p" if name in PROTOCOL else "h"
        for i, text in enumerate(_values(value)):
            texts.append(text)
            contexts.append(f'"{name}": "')  # as a JSON member: the value starts a string
            slots.append((kind, name, i))
            words = decoded_words(text)
            if words is not None:  # encoded words: what they decode to cannot be masked in them
                texts.append(words)
                contexts.append(f'"{name}": "')
                slots.append(("p", name, i))
    path, _, query = path_with_query.partition("?")
    texts.append(unquote(path, errors="replace"))
    contexts.append("")
    slots.append(("p", ":path", 0))
    parts = query.split("&") if query else []
    for i, part in enumerate(parts):
        key, eq, value = part.partition("=")
        name = unquote_plus(key, errors="replace")
        texts.append(name)
        contexts.append("")
        slots.append(("q", "k", i))
        if eq:
            texts.append(unquote_plus(value, errors="replace"))
            contexts.append(f"{name}=")
            slots.append(("q", "v", i))
    masked, result = masker.mask_texts(texts, contexts=contexts)
    if body_tokens:
        found: dict[str, tuple[str, str, str]] = {}
        for token, original in body_tokens.items():
            kind = token_kind(token)
            found[original] = (token, kind, KIND_CATEGORIES.get(kind, ""))
        # (the echoed tokens are the body's: the caller keeps them with the body's token map)
        masked = echo.echo(masked, found, [[] for _ in masked], result.counts)
    out = ChannelResult(result=result)
    if not result.total:
        return out
    new_parts = [part.partition("=") for part in parts]
    for (kind, key, i), before, after in zip(slots, texts, masked, strict=True):
        if after == before:
            continue
        if kind == "p":
            where = {":path": "the request path", "": "a header name"}.get(key, f"the {key} header")
            raise IdentifierInRequestLineError(
                f"{where} carries an AWS identifier, which cannot be masked there; "
                "the request was not forwarded"
            )
        if kind == "h":
            out.headers.setdefault(key, _values(headers[key]))[i] = after
        else:
            k, eq, v = new_parts[i]
            if key == "k":
                new_parts[i] = (quote(after, safe=_QUERY_SAFE), eq, v)
            else:
                new_parts[i] = (k, eq, quote(after, safe=_QUERY_SAFE))
    if new_parts != [part.partition("=") for part in parts]:
        out.raw_query = "&".join("".join(p) for p in new_parts)
    return out
