"""A small Dockerfile reader: instructions per build stage, ENV values as Docker reads them.

Enough for this repository's Dockerfiles (no heredocs, no escape-directive changes): line
continuations, comments, ``ARG`` before the first ``FROM``, ``FROM ... AS name``, ``ENV`` in the
``key=value`` form with shell-style quoting, ``COPY [--from=stage] src... dest``."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_ARG_REF = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """Every ``ENV`` of this stage, later values winning."""
        values: dict[str, str] = {}
        for ins in self.all("ENV"):
            values.update(parse_env(ins.args))
        return values

    def copies(self) -> list[tuple[str | None, list[str], str]]:
        """``(from_stage, sources, dest)`` for each ``COPY``."""
        result = []
        for ins in self.all("COPY"):
            words = shlex.split(ins.args)
            source_stage = None
            while words and words[0].startswith("--"):
                flag = words.pop(0)
                if flag.startswith("--from="):
                    source_stage = flag.split("=", 1)[1]
            result.append((source_stage, words[:-1], words[-1]))
        return result


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Join continuation lines; drop comments and blank lines. Returns ``(first line number, text)``."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        out.append((start, " ".join(p for p in pending if p)))
        pending = []
    if pending:
        raise ValueError(f"line {start}: continuation at end of file")
    return out


def parse_env(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if words and "=" not in words[0]:  # legacy "ENV key value"
        return {words[0]: " ".join(words[1:])}
    values = {}
    for word in words:
        if "=" not in word:
            raise ValueError(f"ENV word without '=': {word!r}")
        key, value = word.split("=", 1)
        values[key] = value
    return values


def parse(text: str) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            words = args.split()
            base = _ARG_REF.sub(lambda m: global_args.get(m[1] or m[2], m[0]), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            if len(words) not in (1, 3):
                raise ValueError(f"line {number}: FROM {args!r}")
            stages.append(Stage(base, name))
        elif not stages:
            if keyword != "ARG":
                raise ValueError(f"line {number}: {keyword} before FROM")
            name, _, default = args.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, args, number))
    if not stages:
        raise ValueError("no FROM")
    return Dockerfile(global_args, stages)


def load(path: Path) -> Dockerfile:
    return parse(path.read_text(encoding="utf-8"))


def ignored_by(patterns: list[str], path: str) -> bool:
    """Whether ``.dockerignore`` ``patterns`` exclude ``path`` (relative, ``/``-separated): the last
    matching pattern wins, ``!`` re-includes, and a pattern that matches a directory matches
    everything under it."""
    from fnmatch import fnmatchcase

    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip().strip("/")
        if pattern.startswith("**/"):
            hit = any(fnmatchcase(p, pattern[3:]) for p in parts) or any(
                fnmatchcase(p, pattern) for p in prefixes
            )
        else:
            hit = any(fnmatchcase(p, pattern) and p.count("/") == pattern.count("/") for p in prefixes)
        if hit:
            excluded = not negate
    return excluded


def dockerignore_patterns(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
