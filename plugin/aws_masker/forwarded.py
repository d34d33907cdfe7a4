"""The proxy headers Kong passes on with text a client sent: ``X-Forwarded-For`` and ``Via``.

Kong works out what it sends upstream in these headers before any plugin's ``access`` runs (its
runloop's ``access.before``: the client's ``X-Forwarded-For`` with the connecting address appended,
the client's ``Via`` with Kong's own hop appended) and sends that with ``proxy_set_header``, so a
plugin's header changes do not reach it; with ``trusted_ips`` covering the client, the client's
``X-Forwarded-Proto``/``-Host``/``-Port``/``-Path``/``-Prefix`` are passed on the same way. So these
values cannot be masked. What they are for is addresses: a load balancer in front of Kong lists its
clients' (often private) addresses in ``X-Forwarded-For``, a proxy names itself in ``Via``. IP
addresses and the EC2 host names made of them pass; any other identifier there, or a name the
body's scan found by its context (echo.py), refuses the request (400 ``AWS_MASKER_2009``).

It knows HTTP, nothing about Kong's PDK.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from . import echo
from .channels import decoded_words
from .engine import Masker
from .errors import IdentifierInRequestLineError
from .restore import token_kind
from .tokens import KIND_CATEGORIES

HEADERS = (
    "x-forwarded-for",
    "via",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-path",
    "x-forwarded-prefix",
)
ADDRESS_KINDS = frozenset({"PRIVATE_IP", "PUBLIC_IP", "IPV6", "PRIVATE_DNS", "EC2_HOST"})
"""What these headers carry by design: IP addresses, and EC2's host names spelled from them."""


def _values(value: object) -> list[str]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return [value] if isinstance(value, str) else []


def check_forwarded(
    masker: Masker, headers: Mapping[str, object], body_tokens: Mapping[str, str] | None = None
) -> None:
    """Refuse the request if a passed-on proxy header carries an identifier other than an address.

    ``headers`` as ``kong.request.get_headers()`` gives them (lower-case names, a value or a list of
    values); ``body_tokens`` (token -> original) are the request body's."""
    texts: list[str] = []
    names: list[str] = []
    for name in HEADERS:
        for value in _values(headers.get(name)):
            context = f'"{name}": "'  # as a JSON member, as channels.py scans header values
            words = decoded_words(value)  # (RFC 2047 encoded words: what they decode to, too)
            for text in (value,) if words is None else (value, words):
                for start, _end, _rule, _category, kind, _value, mask in masker.find(context + text):
                    if mask and start >= len(context) and kind not in ADDRESS_KINDS:
                        _refuse(name)
            texts.append(value)
            names.append(name)
    if not texts or not body_tokens:
        return
    found: dict[str, tuple[str | None, str, str]] = {}
    for token, original in body_tokens.items():
        kind = token_kind(token)
        if kind not in ADDRESS_KINDS:
            found[original] = (token, kind, KIND_CATEGORIES.get(kind, ""))
    echoed = echo.echo(texts, found, [[] for _ in texts], Counter())
    for name, before, after in zip(names, texts, echoed, strict=True):
        if after != before:
            _refuse(name)


def _refuse(name: str) -> None:
    raise IdentifierInRequestLineError(
        f"the {name} header carries an AWS identifier; Kong passes it upstream as the client sent it, "
        "where it cannot be masked. The request was not forwarded"
    )
