"""The masking engine: one scan per string, one token map per request.

``Masker`` is built once per configuration (it is immutable but for a bounded cache of what its scans
found in short strings, and thread-safe). ``Masker.mask_texts`` masks every string of one request
together, so they share one token map, a token-shaped string anywhere in the request is reserved
before any token is issued, and a name found by strong context (a rule marked ``echo``, or inside a
masked ARN: arnnames.py) in one string is masked wherever else it stands in the request (echo.py).
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from . import base64text, cliformats, echo
from .arnnames import arn_name
from .config import MaskerConfig
from .errors import OpaqueDataError
from .patterns import Rule
from .scanner import Found, Scanner
from .tokens import TOKEN_RE, TokenIssuer, cached_minter, process_secret

log = logging.getLogger(__name__)

# Strings up to this long (with their context) have their scan's finds cached per Masker: header
# values, model names, roles, tool names and other short JSON members recur from request to request
# and each scan has a fixed cost (about 8 us) whatever the length. Only what the scan finds is cached,
# not how a string is masked: the tokens, the echo and the reservations are still per request. The
# cache is made on a Masker's first short string (a Masker that masks only long texts makes none).
SHORT_SOURCE = 256
SHORT_SOURCES_CACHED = 4096


@lru_cache(maxsize=1)
def default_scanner() -> Scanner:
    scanner = Scanner()
    if scanner.mode != "anchors":
        log.warning(
            "aws-masker: the hyperscan package is not available on this platform; masking uses the "
            "pure-Python scanner, which finds the same identifiers more slowly (docs/benchmarks.md)"
        )
    return scanner


_ARN_ACCOUNTS = re.compile(r"arn:[^:]*:([^:]*):[^:]*:([0-9]{12}):(?:account/o-[a-z0-9]+/([0-9]{12})\Z)?")


def _arn_account(arn: str) -> str | None:
    """The account an ARN names: its account field, or for an Organizations member account ARN
    (``arn:aws:organizations::<management>:account/o-…/<member>``) the member."""
    m = _ARN_ACCOUNTS.match(arn)
    if m is None:
        return None
    return m[3] if m[1] == "organizations" and m[3] else m[2]


_KEY_END = frozenset(":=\"'")
"""How the text before a base64 run ends (blanks aside) when it is a key."""


def _outside(spans: list[tuple[int, int]]) -> Callable[[int, int], bool]:
    """Whether ``start:end`` lies outside each of ``spans`` (in order, not overlapping)."""

    def outside(start: int, end: int) -> bool:
        k = bisect_right(spans, (start, end)) - 1
        return k < 0 or spans[k][0] > start or end > spans[k][1]

    return outside


_UNNAMED: tuple[str | None, str, str] = (None, "", "")  # (names.get of a name not found yet)


def _unnamed(
    names: dict[str, tuple[str | None, str, str]],
    enabled: frozenset[str],
    allowed: frozenset[str],
    name: str | None,
    kind: str,
    category: str,
) -> None:
    """Note ``name`` (an ARN's account or name) for the echo, tokenless until it recurs: not where it
    is named already, its category is off or it is allow-listed."""
    if name and name not in names and category in enabled and name not in allowed:
        names[name] = (None, kind, category)


@dataclass
class MaskResult:
    """What one request's masking did. ``tokens`` maps token -> original, for this request only."""

    tokens: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    """Masked occurrences per category."""
    collisions: int = 0
    names: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """Names found by a rule marked ``echo`` (name -> token, kind, category): echoed in these texts."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Masker:
    def __init__(self, config: MaskerConfig | None = None, scanner: Scanner | None = None) -> None:
        self.config = config or MaskerConfig()
        self._scanner = scanner or default_scanner()
        self._enabled = self.config.enabled_categories
        self._allow = frozenset(self.config.allow_list)
        secret = self.config.token_secret
        self._secret = secret.encode("utf-8") if secret else process_secret()
        self._mint = cached_minter(self._secret)
        self._short_finds: Callable[[str], tuple[Found, ...]] | None = None  # (made on first use)

    def find(self, text: str) -> list[Found]:
        """Every identifier the catalogue recognises in ``text`` (masked or kept)."""
        found = self._find_plain(text)
        return self._with_cli_formats(text, found) if cliformats.may_hold(text) else found

    def _find_plain(self, text: str) -> list[Found]:
        return self._scanner.scan(text, self._enabled, self._allow)

    def _with_cli_formats(self, text: str, found: list[Found]) -> list[Found]:
        """``found`` (the plain scan of ``text``, which ``cliformats.may_hold``) with what the AWS CLI
        table and text output structure adds."""
        return cliformats.merge(found, cliformats.finds(text, self._find_plain, found))

    def mask_text(self, text: str) -> tuple[str, MaskResult]:
        (masked,), result = self.mask_texts([text])
        return masked, result

    def mask_texts(
        self,
        texts: list[str],
        contexts: list[str] | None = None,
        reserve_from: list[str] | None = None,
        suffixes: list[str] | None = None,
        issued: dict[str, str] | None = None,
        named: dict[str, tuple[str | None, str, str]] | None = None,
    ) -> tuple[list[str], MaskResult]:
        """Mask several strings of one request with one shared token map.

        ``contexts[i]``, if given, is text that stood right before ``texts[i]`` in the source (for a
        JSON value: its key, as ``"OwnerId": "``). It is scanned with the string, so key-dependent
        rules (account IDs, buckets, ...) see their key, but only the string itself is changed.
        ``suffixes[i]``, likewise, is text that stood right after it (for a JSON value: its closing
        quote and the next member's key), for rules that look behind a value.
        ``reserve_from`` are strings of the request that are sent unchanged: token-shaped text in them
        is reserved too. ``issued`` (token -> original) are tokens an earlier call issued for the same
        request (the texts may hold them): they are issued again for their originals, not reserved,
        and the result's ``tokens`` include them. ``named`` are names an earlier call found by their
        context (for the echo, as ``MaskResult.names``; a token of None: not issued yet): they are
        echoed in these texts too.
        """
        issuer = TokenIssuer(self._secret, self._mint)
        sources = [contexts[i] + text for i, text in enumerate(texts)] if contexts else texts
        if suffixes:
            sources = [source + suffixes[i] for i, source in enumerate(sources)]
        # Every token-shaped string of the request is reserved before the first token is issued. It
        # is found by a literal search anchored on "AWS_", exactly where the restore would find it
        # (the regex's own literal search: faster than a substring test for an absent "AWS_").
        for text in [*(reserve_from or ()), *sources]:
            issuer.reserved.update(TOKEN_RE.findall(text))
        if issued:
            issuer.reserved.difference_update(issued)
            issuer.by_token.update(issued)
        result = MaskResult()
        names: dict[str, tuple[str | None, str, str]] = dict(named or {})  # context-found, for the echo
        kept: list[list[tuple[int, int]]] = []
        replaced: list[list[tuple[int, int]]] = []  # per text, the spans its tokens stand for
        out: list[str] = []
        for i, (text, source) in enumerate(zip(texts, sources, strict=True)):
            cut = len(contexts[i]) if contexts else 0
            kept.append([])
            replaced.append([])
            stop = cut + len(text)
            out.append(self._render(text, source, cut, stop, issuer, result, names, kept[-1], replaced[-1]))
        if names:

            def issue_named(kind: str, value: str) -> str:  # an ARN's account or name that recurs
                token = issuer.issue(kind, value)
                names[value] = (token, kind, names[value][2])
                return token

            out = echo.echo(out, names, kept, result.counts, issue_named)
        result.tokens = issuer.by_token
        result.collisions = issuer.collisions
        result.names = {name: entry for name, entry in names.items() if entry[0] is not None}  # type: ignore[misc]
        return self._mask_base64(texts, out, sources, contexts, replaced, result, issuer, names), result

    def _mask_base64(
        self,
        texts: list[str],
        out: list[str],
        sources: list[str],
        keys: list[str] | None,
        replaced: list[list[tuple[int, int]]],
        result: MaskResult,
        issuer: TokenIssuer,
        names: dict[str, tuple[str | None, str, str]],
    ) -> list[str]:
        """``out`` (``texts`` masked) with the base64 runs of ``texts`` (base64text.py) masked inside:
        what a run decodes to, when it is text, is masked with this request's tokens (one more
        ``mask_texts`` of all of them, which does the same for base64 inside those) and coded back
        as it was. A run that decodes to bytes that are not text, when those bytes, read as text,
        hold an identifier (a CloudWatch Logs Insights ``@ptr``: protobuf around a log group's
        account), cannot be masked in place: the run is masked whole, one token of the first such
        identifier's kind standing for all of it (its line breaks too, when wrapped), issued by this
        request's ``issuer`` (whose tokens are ``result``'s). The runs are found in the texts as sent
        (no token of this request is in them, and the scan rarely changes a run), then in ``out`` by
        their characters."""
        found = [
            (i, run)
            for i, text in enumerate(texts)
            # (not a stretch inside what one token replaced, such as an identifier of 24 characters
            # or more: nothing of it is sent, so there is nothing to decode)
            for run in base64text.runs(text, _outside(replaced[i]) if replaced[i] else None)
        ]
        if not found:
            return out
        # each run to replace, in the texts' order, with its token when it is masked whole (else None:
        # what it decodes to is masked)
        runs: list[tuple[int, base64text.Run, str | None]] = []
        for i, run in found:
            if run.text is not None:
                runs.append((i, run, None))
                continue
            inside = next((f for f in self.find(base64text.as_seen(run.data)) if f.mask), None)
            if inside is not None:
                kind, category = inside.kind, inside.category
            elif "account" in self._enabled and base64text.digits_seen(run.data):
                kind, category = "ACCOUNT", "account"  # (whatever binary field glued to it)
            else:
                continue
            runs.append((i, run, issuer.issue(kind, texts[i][run.start : run.end])))
            result.counts[category] += 1
        result.collisions = issuer.collisions
        decodable = [(i, run) for i, run, token in runs if token is None]
        masked, inner = (
            self._mask_decoded(decodable, keys, sources, out, result, names) if decodable else ([], None)
        )
        if len(decodable) == len(runs) and (inner is None or inner.total == 0):
            return out
        if inner is not None:
            result.tokens.update(inner.tokens)
            result.counts.update(inner.counts)
            result.collisions += inner.collisions
            result.names = {**inner.names, **result.names}
        decoded = iter(masked)
        out = list(out)
        pieces: dict[int, list[str]] = {}
        last: dict[int, int] = {}
        passed: dict[int, int] = {}  # per text, where the last run replaced ends in the text as sent
        for i, run, token in runs:
            if token is None:
                new = next(decoded)
                if new == run.text:
                    continue
                replacement = base64text.encode(run, texts[i], new)
            else:
                replacement = token
            coded = texts[i][run.start : run.end]
            # the same characters may stand earlier, not as a run (a short value not after a key):
            # as many of them are passed over in ``out`` as stand between the last run and this one
            at = out[i].find(coded, last.get(i, 0))
            seen = texts[i].find(coded, passed.get(i, 0), run.start + len(coded) - 1)
            while at >= 0 and 0 <= seen < run.start:
                at = out[i].find(coded, at + 1)
                seen = texts[i].find(coded, seen + 1, run.start + len(coded) - 1)
            passed[i] = run.end
            if at < 0:  # the scan changed the run itself: what it decodes to now is not known
                raise OpaqueDataError(
                    "base64 text in the request holds an identifier and could not be masked in place; "
                    "it was not forwarded"
                )
            before = out[i][last.get(i, 0) : at]
            pieces.setdefault(i, []).extend((before, replacement))
            last[i] = at + len(coded)
        for i, parts in pieces.items():
            out[i] = "".join(parts) + out[i][last[i] :]
        return out

    def _mask_decoded(
        self,
        readable: list[tuple[int, base64text.Run]],
        keys: list[str] | None,
        sources: list[str],
        out: list[str],
        result: MaskResult,
        names: dict[str, tuple[str | None, str, str]],
    ) -> tuple[list[str], MaskResult]:
        """What the runs of ``readable`` decode to, masked together with this request's tokens (and the
        names found so far echoed in it: a secret key masked under its key is masked in a base64 log
        line too)."""
        decoded: list[str] = [run.text for _, run in readable]  # type: ignore[misc]
        # each with what stands before it on its line as its context (a key: AWS_ACCOUNT_ID: <base64>),
        # on a line of its own where that is not a key (a word glued to the base64, prose: "please
        # decode <base64>", so what it decodes to starts a line, as an `aws s3 ls` listing must); the
        # line begins in the text's own context (a JSON value's key: "OwnerId": "<base64>")
        contexts = []
        for i, run in readable:
            start = (len(keys[i]) if keys else 0) + run.start
            line = max(sources[i].rfind("\n", 0, start) + 1, start - 80)
            before = sources[i][line : start + run.skip]
            contexts.append(before if not before or before.rstrip(" \t")[-1:] in _KEY_END else before + "\n")
        return self.mask_texts(
            decoded, contexts, reserve_from=[*sources, *out], issued=dict(result.tokens), named=names
        )

    def _render(
        self,
        text: str,
        source: str,
        cut: int,
        stop: int,
        issuer: TokenIssuer,
        result: MaskResult,
        names: dict[str, tuple[str | None, str, str]],
        kept: list[tuple[int, int]],
        replaced: list[tuple[int, int]],
    ) -> str:
        """``text`` (which is ``source[cut:stop]``, between its context) with each identifier the scan of
        ``source`` finds in it replaced by its token, rendered as the scan goes. Names masked by a
        rule marked ``echo`` go into ``names``; the spans of identifiers kept verbatim (in the
        returned text) into ``kept``."""
        finds: tuple[Found, ...] | None = None  # (a short source's, from the cache)
        if len(source) <= SHORT_SOURCE:
            short_finds = self._short_finds
            if short_finds is None:  # (two threads may both make one: one is kept, both are right)
                short_finds = self._short_finds = lru_cache(maxsize=SHORT_SOURCES_CACHED)(
                    lambda text: tuple(self.find(text))
                )
            finds = short_finds(source)
            if not finds:  # most short strings of a request (keys, roles, models, headers)
                return text
        pieces: list[str] = []
        append = pieces.append
        issue = issuer.issue
        enabled, allowed = self._enabled, self._allow
        categories: list[str] = []
        counted = categories.append
        last = cut
        size = 0  # of the pieces so far

        def emit(start: int, end: int, rule: Rule, category: str, kind: str, value: str, mask: bool) -> None:
            nonlocal last, size
            if start < cut or start >= stop:  # an identifier inside the context stays as it is
                return
            if end > stop:
                end = stop
            if not mask:
                kept.append((size + start - last, size + end - last))
                return
            append(source[last:start])
            replaced.append((start - cut, end - cut))
            token = issue(kind, value)
            append(token)
            counted(category)
            size += start - last + len(token)
            last = end
            # a name masked with evidence enough, not yet named (or only as an ARN's name: tokenless)
            if (
                rule.echo or (rule.echo_when is not None and rule.echo_when(value, source, start))
            ) and names.get(value, _UNNAMED)[0] is None:
                names[value] = (token, kind, category)
            # an ARN's (or an SQS queue URL's <account>/<queue>) account and name, should they stand
            # elsewhere (tokens if so)
            if value[:4] == "arn:":
                _unnamed(names, enabled, allowed, _arn_account(value), "ACCOUNT", "account")
                named = arn_name(value)
                if named:
                    _unnamed(names, enabled, allowed, *named)
            elif kind == "SQS_QUEUE":
                account, _, queue = value.partition("/")
                _unnamed(names, enabled, allowed, account, "ACCOUNT", "account")
                _unnamed(names, enabled, allowed, queue, "SQS_ARN", "arn")

        if finds is not None:
            for f in finds:
                emit(*f)
        elif cliformats.may_hold(source):  # AWS CLI table or text output: cells get their keys' context
            for f in self._with_cli_formats(source, self._find_plain(source)):
                emit(*f)
        else:
            self._scanner.each(source, self._enabled, self._allow, emit)
        if last == cut:
            return text
        append(source[last:stop])
        result.counts.update(categories)
        return "".join(pieces)
