"""Where a running process spends its time: py-spy samples summarised as a table.

    python load/profiles.py --pid PID [--seconds 20] [--out FILE.md] [--title TEXT]

A benchmark that falls short of a goal says where the time goes (``make bench`` profiles the
plugin server and the gateway while they are under load). ``py-spy record --format raw`` samples
the process without stopping it (``--nonblocking``) and writes one line per distinct stack,
``frame;frame;...;frame count``, outermost first. Idle threads (blocked in a wait) are left out by
py-spy, so the table shows CPU, not waiting. Each row is a function with:

- ``self``: the share of samples in which it was the innermost frame (time spent in it);
- ``total``: the share of samples in which it was anywhere on the stack (itself and its callees).

py-spy needs permission to read the target's memory (root, or ``CAP_SYS_PTRACE``, or
``kernel.yama.ptrace_scope=0``); without it :func:`record` raises :class:`ProfileError` with
py-spy's message, and callers report the profile as not taken.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


class ProfileError(RuntimeError):
    """py-spy is missing or could not sample the process."""


@dataclass(frozen=True)
class Row:
    function: str
    self_share: float
    total_share: float


@dataclass(frozen=True)
class Profile:
    samples: int
    rows: list[Row]


def py_spy() -> str:
    path = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(path).exists():
        raise ProfileError("py-spy is not installed (pip install py-spy)")
    return path


def start(pid: int, seconds: float, rate: int = 100) -> tuple[subprocess.Popen[str], Path]:
    """Start sampling ``pid`` for ``seconds`` in the background; :func:`finish` collects it."""
    out = Path(tempfile.mkstemp(prefix="py-spy-", suffix=".txt")[1])
    argv = [
        py_spy(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--nolineno",
        "--nonblocking",
        "--output",
        str(out),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, out


def finish(proc: subprocess.Popen[str], out: Path, top: int = 15) -> Profile:
    """Wait for a :func:`start`ed recording and summarise it."""
    try:
        output, _ = proc.communicate()
        text = out.read_text() if out.exists() else ""
    finally:
        out.unlink(missing_ok=True)
    if proc.returncode != 0 or not text.strip():
        last = (output or "").strip().splitlines()[-1:] or ["no samples"]
        raise ProfileError(f"py-spy failed: {last[0]}")
    return summarise(text, top)


def record(pid: int, seconds: float, top: int = 15) -> Profile:
    proc, out = start(pid, seconds)
    return finish(proc, out, top)


def summarise(raw: str, top: int = 15) -> Profile:
    """py-spy's raw (collapsed) stacks -> the ``top`` functions by self share, then total share."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            anywhere[frame] += count
    if not samples:
        return Profile(0, [])
    names = sorted(anywhere, key=lambda f: (-own[f], -anywhere[f], f))[:top]
    rows = [Row(f, own[f] / samples, anywhere[f] / samples) for f in names]
    return Profile(samples, rows)


def markdown(profile: Profile, title: str) -> str:
    lines = [
        f"**{title}** ({profile.samples} samples of running threads, py-spy)",
        "",
        "| function | self | total |",
        "|---|---:|---:|",
    ]
    for row in profile.rows:
        name = row.function.replace("|", "\\|")
        lines.append(f"| `{name}` | {row.self_share:.1%} | {row.total_share:.1%} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Summarise where a running Python process spends its time.")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--title", default=None)
    p.add_argument("--out", type=Path, default=None, help="write the table here (default: print it)")
    args = p.parse_args(argv)
    try:
        profile = record(args.pid, args.seconds, args.top)
    except ProfileError as exc:
        print(f"profiles: {exc}", file=sys.stderr)
        return 1
    text = markdown(profile, args.title or f"pid {args.pid}, {args.seconds:g} s")
    if args.out:
        args.out.write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
