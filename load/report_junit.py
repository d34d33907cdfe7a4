"""The latest test run for ``make report``: pytest's JUnit XML read into test cases, and each case put
in the test plan's section that it covers (Redis connection, event publishing, sampling, …).

The mapping is by test module and test name, first matching section wins, so every test case is
counted exactly once; whatever no section claims is counted under "other tests".
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Case:
    """One test case of the run: ``module`` is JUnit's classname (``tests.e2e.test_monitoring``)."""

    module: str
    name: str
    outcome: str  # passed | failed | error | skipped
    message: str = ""

    @property
    def nodeid(self) -> str:
        path = self.module.replace(".", "/")
        parts = path.split("/")
        # a class-based test: tests.test_x.TestFoo -> tests/test_x.py::TestFoo
        for i, part in enumerate(parts):
            if part.startswith("test_") and i + 1 < len(parts):
                return "/".join(parts[: i + 1]) + ".py::" + "::".join(parts[i + 1 :]) + "::" + self.name
        return path + ".py::" + self.name


@dataclass
class Run:
    """The run as JUnit recorded it."""

    path: Path
    timestamp: str
    hostname: str
    command: str
    machine: str
    duration_s: float
    cases: list[Case] = field(default_factory=list)


@dataclass(frozen=True)
class Section:
    """A section of the test plan and the tests that cover it: ``rules`` are (module, name regex)
    pairs; a module ending in ``.`` is a package prefix, one starting with ``~`` a regex searched in
    the module's name, a ``None`` regex takes the whole module."""

    key: str
    title: str
    part: str  # functional | stability
    covers: str
    rules: tuple[tuple[str, str | None], ...]

    def claims(self, case: Case) -> bool:
        for module, pattern in self.rules:
            if module.startswith("~"):
                hit = re.search(module[1:], case.module) is not None
            elif module.endswith("."):
                hit = case.module.startswith(module)
            else:
                hit = case.module == module or case.module.startswith(module + ".")
            if hit and (pattern is None or re.search(pattern, case.name)):
                return True
        return False


EV = "tests.test_events"
EV_REDIS = "tests.test_events_redis"
MON = "tests.e2e.test_monitoring"
SUB_REDIS = "tests.subscriber.test_subscriber_redis"
PRODUCT = "tests.e2e.test_product"

SECTIONS: tuple[Section, ...] = (
    Section(
        "redis", "Redis connection", "functional",
        "connecting with password and TLS, one connection per plugin server process, Redis stopped and "
        "restarted (publisher and subscriber), wrong password, closing while Redis is down, "
        "`aws-masker up` finding or starting a Redis",
        (
            (EV, r"reconnect|redis_is_down|password|one_publisher"),
            (EV_REDIS, r"stopped_then_restarted|wrong_password|tls"),
            (MON, r"redis_down|one_redis_connection"),
            ("tests.e2e.test_up", None),
            (SUB_REDIS, r"redis_restart|auth_|tls|disabled_means_no_redis|in_backoff"),
        ),
    ),
    Section(
        "publishing", "Event publishing", "functional",
        "the events' fields (counts and names only, no identifier), both events of a request with Kong's "
        "request id, the log phase's PDK calls, a full queue drops without blocking, publisher statistics",
        (
            (EV, r"events_carry|missing_restore|log_phase|publisher_lines|failing_log_phase|stats_are|"
                 r"full_queue|leaves_the_restore_plugin"),
            (MON, r"each_request_gets_both_events"),
        ),
    ),
    Section(
        "sampling", "Sampling", "functional",
        "rates 0 and 1 exact, 10% binomial, monitoring off never samples, a request gets both events or "
        "neither",
        (
            (EV, r"sampling|never_samples"),
            (MON, r"sampling"),
        ),
    ),
    Section(
        "batching", "Batching", "functional",
        "a full batch is one PUBLISH, a partial batch goes out after the flush interval, batch size 1 "
        "publishes each event as itself, batches on one connection to a real Redis",
        (
            (EV, r"batch"),
            (EV_REDIS, r"batch"),
        ),
    ),
    Section(
        "subscriber", "Subscriber", "functional",
        "`aws-masker subscriber`: parsing, counters, rate limits, /health and /metrics, the live page and "
        "monitor, signals; it sees the gateway's events end to end",
        (
            ("tests.subscriber.", None),
            (MON, r"subscriber"),
            ("tests.e2e.test_live_monitor", None),
            ("tests.e2e.test_live_page_browser", None),
        ),
    ),
    Section(
        "restore", "Restore and streaming", "functional",
        "the restore plugin (Lua) in JSON, text and SSE, tokens split across chunks, real nginx, each "
        "event reaching the client as it is generated, 10 MB answers",
        (
            ("tests.test_restore", None),
            ("tests.gateway.test_restore_plugin", None),
            ("tests.nginx.", None),
            ("tests.e2e.test_streaming", None),
            (PRODUCT, r"_sse|restored|another_requests_token"),
        ),
    ),
    Section(
        "failclosed", "Fail-closed and failure modes", "functional",
        "an unexpected exception or a killed plugin server never lets an unmasked body through; bodies "
        "that cannot be masked are refused; the gateway's failure modes",
        (
            ("tests.test_plugin", r"fails_closed|refused|refuses"),
            ("tests.gateway.test_failure_modes", None),
            ("tests.gateway.test_gateway_e2e", r"refuses"),
            (PRODUCT, r"plugin_exception|fails_closed"),
        ),
    ),
    Section(
        "smoke", "Load smoke test (Locust)", "functional",
        "a short headless Locust run against the local stack: no failures, no leaked identifier",
        (("~locust", None), ("tests.", r"locust")),
    ),
    Section(
        "memory", "Memory in the test suite", "stability",
        "the gateway's RSS stays flat after warm-up (a short in-suite check; the soak, 3.1, is the real one)",
        (("tests.e2e.test_memory", None),),
    ),
)

OTHER = Section(
    "other", "Other tests", "functional",
    "masking engine, catalogue, corpora, CLI formats, gateway, nginx, stack files and the rest of the suite",
    (),
)


def parse(path: Path) -> Run | None:
    """The run in ``path``, or None when there is no such file (tests not run)."""
    if not path.is_file():
        return None
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    if not suites:
        raise ValueError(f"{path}: no <testsuite> in it")
    suite = suites[0]
    props = {p.get("name", ""): p.get("value", "") for p in suite.iter("property")}
    run = Run(
        path=path,
        timestamp=suite.get("timestamp", ""),
        hostname=suite.get("hostname", ""),
        command=props.get("command", ""),
        machine=props.get("machine", ""),
        duration_s=sum(float(s.get("time", "0") or 0) for s in suites),
    )
    for suite in suites:
        for tc in suite.iter("testcase"):
            run.cases.append(_case(tc))
    return run


def _case(tc: ET.Element) -> Case:
    outcome, message = "passed", ""
    for tag in ("failure", "error", "skipped"):
        el = tc.find(tag)
        if el is not None:
            outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
            message = el.get("message") or (el.text or "")
            break
    return Case(tc.get("classname", ""), tc.get("name", ""), outcome, message)


def assign(cases: list[Case]) -> dict[str, list[Case]]:
    """Each case under the key of the first section that claims it (``other`` for the rest)."""
    out: dict[str, list[Case]] = {s.key: [] for s in (*SECTIONS, OTHER)}
    for case in cases:
        section = next((s for s in SECTIONS if s.claims(case)), OTHER)
        out[section.key].append(case)
    return out


def counts(cases: list[Case]) -> dict[str, int]:
    """passed / failed (failures and errors) / skipped / total."""
    c = {"passed": 0, "failed": 0, "skipped": 0, "total": len(cases)}
    for case in cases:
        c["failed" if case.outcome in ("failed", "error") else case.outcome] += 1
    return c
