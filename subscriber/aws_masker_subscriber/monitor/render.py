"""Draw a :class:`~.sample.Sample`: plain text (``--once``) or a rich renderable (the live view).

Only aggregates: counts, rates, pids and resource use. Nothing here sees an identifier or a token.
"""

from __future__ import annotations

import time
from collections import deque

from rich import box
from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from .sample import Sample

BAR_WIDTH = 40


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def _health_line(sample: Sample) -> str:
    if sample.healthy is None:
        return "unreachable"
    status = "ok" if sample.healthy else f"UNHEALTHY ({(sample.health or {}).get('reason', '?')})"
    return f"{status}, redis {(sample.health or {}).get('redis', '?')}"


def _redis_line(sample: Sample) -> str:
    info = sample.redis_info
    if info is None:
        return "not shown"
    return (
        f"{sample.redis_target}: {info.get('instantaneous_ops_per_sec', 0)} ops/s, "
        f"{info.get('connected_clients', 0)} clients, {info.get('used_memory_human', '?')} used"
    )


def plain(sample: Sample) -> str:
    """One snapshot as plain text: ``key: value`` lines and indented per-item lines, stable for scripts."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sample.taken_at))
    lines = [f"aws-masker monitor {stamp}", f"subscriber: {sample.subscriber_url} {_health_line(sample)}"]
    if sample.stats is not None:
        lines.append(f"rate limited (log lines): {sample.rate_limited()}")
        lines.append("events/s (last 10 s):")
        lines += [f"  {kind} {rate:g}" for kind, rate in sample.events_per_second().items()]
        lines.append("events total:")
        lines += [f"  {kind} {count}" for kind, count in sample.events_by_type().items()]
        totals = sample.publisher_totals()
        lines.append(
            f"publishers: {len(sample.stats.get('publishers', []))}, enqueued {totals['enqueued']}, "
            f"published {totals['published']}, dropped {totals['dropped']}, errors {totals['errors']}"
        )
        lines.append("identifiers masked by category:")
        lines += [f"  {cat} {count}" for cat, count in sample.masked_by_category().items()]
    lines.append(f"redis: {_redis_line(sample)}")
    lines.append("processes:")
    lines += [
        f"  {u.role} pid {u.pid} cpu {u.cpu_percent:.1f}% rss {_mib(u.rss_bytes)} ({u.found_by})"
        for u in sample.processes
    ] or ["  none found"]
    problems = sample.problems()
    lines.append("errors:" + ("" if problems else " none"))
    lines += [f"  {p}" for p in problems]
    return "\n".join(lines) + "\n"


def bars(counts: dict[str, int], width: int = BAR_WIDTH) -> Table:
    """A horizontal bar per category, scaled to the largest count."""
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right", style="bold")
    table.add_column()
    table.add_column(justify="right")
    top = max(counts.values(), default=0)
    for cat, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        length = round(width * count / top) if top else 0
        table.add_row(cat, Text("█" * length or "·", style="cyan" if count else "dim"), str(count))
    return table


class LiveView:
    """The full-screen view: keeps the last errors across samples (newest last). Compact enough for an
    80x24 terminal; side by side from ``WIDE`` columns."""

    WIDE = 110

    def __init__(self, max_errors: int = 5) -> None:
        self.errors: deque[str] = deque(maxlen=max_errors)

    def render(self, sample: Sample, width: int = 80) -> RenderableType:
        stamp = time.strftime("%H:%M:%S", time.localtime(sample.taken_at))
        for problem in sample.problems():
            if not any(e.endswith(problem) for e in self.errors):
                self.errors.append(f"{stamp} {problem}")

        status = Table.grid(padding=(0, 2))
        status.add_column(style="bold")
        status.add_column()
        status.add_row("subscriber", f"{sample.subscriber_url} {_health_line(sample)}")
        status.add_row("rate limited", str(sample.rate_limited() if sample.stats is not None else "-"))
        status.add_row("redis", _redis_line(sample))

        events = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        events.add_column("events")
        events.add_column("per s (10 s)", justify="right")
        events.add_column("total", justify="right")
        rates, totals = sample.events_per_second(), sample.events_by_type()
        for kind in totals or rates:
            events.add_row(kind, f"{rates.get(kind, 0):g}", str(totals.get(kind, 0)))
        pub = sample.publisher_totals()
        published = Text(
            f"published {pub['published']} · dropped {pub['dropped']} · enqueued {pub['enqueued']} "
            f"· Redis errors {pub['errors']}",
            style="red" if pub["dropped"] or pub["errors"] else "",
        )

        procs = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for name, justify in (("process", "left"), ("pid", "right"), ("CPU", "right"), ("RSS", "right")):
            procs.add_column(name, justify=justify)  # type: ignore[arg-type]
        procs.add_column("found by")
        for u in sample.processes:
            procs.add_row(u.role, str(u.pid), f"{u.cpu_percent:.1f}%", _mib(u.rss_bytes), u.found_by)

        masked = {cat: n for cat, n in sample.masked_by_category().items() if n}
        categories: RenderableType = (
            bars(masked, width=30) if masked else Text("nothing masked yet", style="dim")
        )
        errors = Text("\n".join(self.errors) or "none", style="red" if self.errors else "green")

        left = Group(events, published, procs)
        right = Group(
            Rule("identifiers masked by category", align="left"),
            categories,
            Rule("last errors", align="left"),
            errors,
        )
        head = Group(Rule(f"aws-masker monitor · {stamp} · q or Ctrl-C to leave"), status)
        if width >= self.WIDE:
            columns = Table.grid(padding=(0, 3), expand=True)
            columns.add_column(ratio=1)
            columns.add_column(ratio=1)
            columns.add_row(left, right)
            return Group(head, Text(""), columns)
        return Group(head, left, right)
