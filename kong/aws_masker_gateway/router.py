"""Kong 3.9 HTTP routing (``traditional_compatible`` flavour) and ``path_handling = v0`` URL joining.

Every (route, path) pair is a candidate with Kong's ATC priority: number of matched fields, then
plain-hosts-only, then regex-ness, then ``regex_priority`` (regex paths only), then prefix length.
Prefix paths match with ``startswith``; regex paths (``~...``) are anchored at the start and matched
against the normalized path. Ties keep declaration order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .declarative import DeclarativeConfig, Route, Service

_UNRESERVED = re.compile(r"%([0-9A-Fa-f]{2})")


def _decode_unreserved(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    if char.isascii() and (char.isalnum() or char in "-._~"):
        return char
    return "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    output: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(output) > 1:
                output.pop()
        elif segment != ".":
            output.append(segment)
    result = "/".join(output)
    if path.endswith(("/.", "/..")):
        result += "/"
    return result if result.startswith("/") else "/" + result


def normalize_path(raw_path: str) -> str:
    """``kong.tools.uri.normalize(uri, true)``: decode unreserved escapes, merge slashes, drop dots."""
    path = _UNRESERVED.sub(_decode_unreserved, raw_path or "/")
    path = re.sub(r"/{2,}", "/", path)
    return _remove_dot_segments(path)


def _sanitize_postfix(postfix: str) -> str:
    if postfix in (".", ".."):
        return ""
    if postfix.startswith("./"):
        return postfix[2:]
    if postfix.startswith("../"):
        return postfix[3:]
    return postfix


def upstream_uri_v0(strip_path: bool, request_postfix: str, req_uri: str, upstream_base: str) -> str:
    """Exact port of ``kong.router.utils.get_upstream_uri_v0``."""
    if upstream_base.endswith("/"):
        if strip_path:
            if request_postfix == "":
                if upstream_base == "/":
                    return "/"
                if req_uri.endswith("/"):
                    return upstream_base
                return upstream_base[:-1]
            if request_postfix.startswith("/"):
                return upstream_base[:-1] + request_postfix
            return upstream_base + request_postfix
        return upstream_base + req_uri[1:]
    if strip_path:
        if request_postfix == "":
            if len(req_uri) > 1 and req_uri.endswith("/"):
                return upstream_base + "/"
            return upstream_base
        if request_postfix.startswith("/"):
            return upstream_base + request_postfix
        return upstream_base + "/" + request_postfix
    if req_uri == "/":
        return upstream_base
    return upstream_base + req_uri


def _pcre_to_python(pattern: str) -> str:
    return pattern.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!")


@dataclass(frozen=True)
class _Candidate:
    route: Route
    path: str | None
    regex: re.Pattern[str] | None
    priority: tuple[int, int, int, int, int]
    order: int


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    service: Service | None
    prefix: str | None  # the matched path when strip_path is on (Kong's match_t.prefix)
    upstream_path: str
    captures: dict[str, str] = field(default_factory=dict)


def _host_matches(patterns: tuple[str, ...], host: str) -> bool:
    for pattern in patterns:
        pattern = pattern.split(":", 1)[0]
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif pattern.endswith(".*"):
            if host.startswith(pattern[:-1]):
                return True
        elif host == pattern:
            return True
    return False


class Router:
    def __init__(self, config: DeclarativeConfig) -> None:
        self.config = config
        candidates: list[_Candidate] = []
        order = 0
        for route in config.routes:
            for path in route.paths or (None,):
                order += 1
                candidates.append(self._candidate(route, path, order))
        candidates.sort(key=lambda c: (tuple(-p for p in c.priority), c.order))
        self.candidates = tuple(candidates)

    @staticmethod
    def _candidate(route: Route, path: str | None, order: int) -> _Candidate:
        weight = sum(1 for present in (route.methods, route.hosts, path) if present)
        plain_hosts = bool(route.hosts) and not any("*" in h for h in route.hosts)
        regex = re.compile("^" + _pcre_to_python(path[1:])) if path and path.startswith("~") else None
        priority = (
            weight,
            int(plain_hosts),
            int(regex is not None),
            route.regex_priority if regex is not None else 0,
            len(path) if path and regex is None else 0,
        )
        return _Candidate(route, path, regex, priority, order)

    def match(self, method: str, raw_path: str, host: str) -> RouteMatch | None:
        """Select a route for a request; ``raw_path`` excludes the query string."""
        path = normalize_path(raw_path)
        host = host.split(":", 1)[0].lower() if not host.startswith("[") else host.lower()
        for cand in self.candidates:
            route = cand.route
            if route.methods and method.upper() not in route.methods:
                continue
            if route.hosts and not _host_matches(route.hosts, host):
                continue
            captures: dict[str, str] = {}
            matched: str | None = None
            if cand.regex is not None:
                found = cand.regex.match(path)
                if not found:
                    continue
                matched = found.group(0)
                captures = {k: v for k, v in found.groupdict().items() if v is not None}
            elif cand.path is not None:
                if not path.startswith(cand.path):
                    continue
                matched = cand.path
            prefix = matched if route.strip_path and matched is not None else None
            service = self.config.service_for(route)
            base = (service.path if service and service.path else None) or "/"
            request_prefix = prefix or "/"
            postfix = _sanitize_postfix(path[len(request_prefix) :])
            upstream = upstream_uri_v0(route.strip_path and prefix is not None, postfix, path, base)
            return RouteMatch(route, service, prefix, upstream, captures)
        return None


_PATH_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%")


def quote_path(path: str) -> str:
    """Escape a normalized path for the upstream request line; existing ``%XX`` escapes are kept."""
    return "".join(chr(b) if b in _PATH_SAFE else f"%{b:02X}" for b in path.encode("utf-8"))
