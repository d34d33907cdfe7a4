"""Deterministic, typed, fixed-width tokens.

A token is ``AWS_<KIND>_<12 lowercase hex>``; the hex is a MAC of the kind and the original value:
BLAKE2s in its keyed mode (RFC 7693), keyed with ``token_secret``, 6 bytes long. So the same
identifier always gets the same token, across requests, workers and nodes, without shared state.

Properties the rest of the system relies on:
- The grammar is closed: ``TOKEN_RE`` matches exactly ``AWS_`` + a known kind + ``_`` + 12 hex.
- No token is a prefix of another: every token is ``AWS_`` + kind + ``_`` + 12 hex, kinds are
  uppercase and the hex part is lowercase, so a token ends exactly 12 hex characters after its kind.
- A token never occurs inside another token or straddles its start, because it starts with ``A``,
  which is not a lowercase hex digit, and no kind contains ``AWS``.
- Tokens match no catalogue rule (they are uppercase + underscores), so masking is idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
from collections.abc import Callable

from .patterns import RULES

HEX_LEN = 12
KINDS: tuple[str, ...] = tuple(
    sorted({k for rule in RULES for k in rule.all_kinds()}, key=lambda k: (-len(k), k))
)
TOKEN_PATTERN = r"AWS_(?:" + "|".join(KINDS) + r")_[0-9a-f]{" + str(HEX_LEN) + "}"
TOKEN_RE = re.compile(TOKEN_PATTERN)
TOKEN_LEN_MAX = len("AWS__") + max(len(k) for k in KINDS) + HEX_LEN
_HEX_BYTES = HEX_LEN // 2


def _kind_categories() -> dict[str, str]:
    """Token kind -> the category its identifiers are counted in (every kind has exactly one)."""
    out: dict[str, str] = {}
    for rule in RULES:
        for kind in rule.all_kinds():
            category = rule.category
            if rule.category_of is not None and kind != rule.pair_kind:
                with contextlib.suppress(KeyError):  # a fallback kind the rule never refines
                    category = rule.category_of(kind)
            if out.setdefault(kind, category) != category:
                raise ValueError(f"token kind {kind} is counted in two categories")
    return out


KIND_CATEGORIES: dict[str, str] = _kind_categories()

log = logging.getLogger(__name__)

_process_secret: bytes | None = None


def process_secret() -> bytes:
    """The random per-process secret used when no ``token_secret`` is configured (warns once)."""
    global _process_secret
    if _process_secret is None:
        _process_secret = secrets.token_bytes(32)
        log.warning(
            "aws-masker: no token secret configured; using a random per-process secret, so tokens "
            "will differ across nodes and restarts (set the plugin's token_secret, or "
            "AWS_MASKER_TOKEN_SECRET for the CLI)"
        )
    return _process_secret


_mac = hashlib.blake2s


def mac_key(secret: bytes) -> bytes:
    """The BLAKE2s key for ``secret``: the secret itself, or its BLAKE2s hash when it is longer than the
    32 bytes a BLAKE2s key can be (any length of secret is accepted)."""
    return secret if len(secret) <= hashlib.blake2s.MAX_KEY_SIZE else hashlib.blake2s(secret).digest()


def token_for(secret: bytes, kind: str, value: str, attempt: int = 0) -> str:
    """The token for ``value`` of ``kind``; ``attempt`` > 0 gives the alternatives used on collision."""
    msg = f"{kind}\x00{value}" if attempt == 0 else f"{kind}\x00{value}\x00{attempt}"
    return f"AWS_{kind}_{_mac(msg.encode(), key=mac_key(secret), digest_size=_HEX_BYTES).hexdigest()}"


def cached_minter(secret: bytes, maxsize: int = 65536) -> Callable[[str, str], str]:
    """``token_for(secret, kind, value)`` behind a cache of up to ``maxsize`` tokens. Tokens are a pure
    function of the secret, kind and value, so the cache holds no per-request state; it pays off
    because every turn of a Claude conversation resends the whole history."""
    # one keyed BLAKE2s hash per new token (a keyed hash needs no inner and outer pass, as HMAC does),
    # from a keyed state made once and copied: a keyed BLAKE2s spends a compression on its key
    # block, and copying the state after it costs a fraction of that (about half a token's time).
    # tests/test_engine.py checks it against token_for.
    keyed = _mac(key=mac_key(secret), digest_size=_HEX_BYTES)
    # kind -> value -> token: plain strings only, so the garbage collector never walks the cache (a
    # cache keyed by (kind, value) tuples made a collection run every few hundred identifiers, and
    # one over the whole heap every few thousand); emptied whole when full
    tokens: dict[str, dict[str, str]] = {}
    size = 0

    def mint(kind: str, value: str) -> str:
        nonlocal size
        by_value = tokens.get(kind)
        if by_value is None:
            by_value = tokens.setdefault(kind, {})
        token = by_value.get(value)
        if token is None:
            state = keyed.copy()
            state.update(f"{kind}\x00{value}".encode())
            token = f"AWS_{kind}_{state.hexdigest()}"
            if size >= maxsize:  # (one atomic step: another thread may be reading the cache)
                tokens.clear()
                size = 0
                by_value = tokens.setdefault(kind, {})
            by_value[value] = token
            size += 1
        return token

    mint.cache = tokens  # type: ignore[attr-defined]  # (TokenIssuer reads a hit without calling mint)
    return mint


class TokenIssuer:
    """Issues tokens for one request and remembers them (token -> original) for the restore.

    ``reserved`` holds token-shaped text that was already present in the input. Such text is never
    issued for a real identifier, so it can never be confused with one on the way back.
    """

    def __init__(self, secret: bytes, mint: Callable[[str, str], str] | None = None) -> None:
        self.by_token: dict[str, str] = {}
        self.reserved: set[str] = set()
        self.collisions = 0
        by_token, reserved = self.by_token, self.reserved
        resolved: dict[tuple[str, str], str] = {}  # values whose first token was taken
        # a cached_minter's cache (kind -> value -> token): a token minted before is read from it with
        # two dict look-ups, no Python call (this runs once per identifier)
        cache: dict[str, dict[str, str]] | None = getattr(mint, "cache", None)
        if cache is None:
            cache = {}
        no_values: dict[str, str] = {}

        # A closure over the maps rather than a method: this runs once per identifier. A token names
        # its kind, so a token already in ``by_token`` for this value is this value's token.
        def issue(kind: str, value: str) -> str:
            """The token for ``value`` of ``kind`` in this request (the same one every time)."""
            token = cache.get(kind, no_values).get(value)
            if token is None:
                token = mint(kind, value) if mint else token_for(secret, kind, value)
            # (no reserved token is ever in ``by_token``; one dict probe both looks up and records)
            if token not in reserved and by_token.setdefault(token, value) == value:
                return token
            return resolve(kind, value)

        def resolve(kind: str, value: str) -> str:
            """The first token is taken (by another value, or by token-shaped input): try the next."""
            token = resolved.get((kind, value))
            if token is None:
                attempt = 1
                self.collisions += 1
                token = token_for(secret, kind, value, attempt)
                while token in reserved or by_token.get(token, value) != value:
                    self.collisions += 1
                    attempt += 1
                    token = token_for(secret, kind, value, attempt)
                resolved[(kind, value)] = token
                by_token[token] = value
            return token

        self.issue = issue
