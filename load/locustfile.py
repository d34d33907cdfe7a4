"""Locust load test of the aws-masker gateway: Claude Messages requests full of AWS identifiers.

    make run                                          # or any stack: docker compose up, ...
    .venv/bin/locust -f load/locustfile.py --host http://127.0.0.1:8000              # web UI, :8089
    .venv/bin/locust -f load/locustfile.py --headless -u 10 -r 5 -t 30s \\
        --host http://127.0.0.1:8000 --csv results/run [--scenario mixed] [--max-requests 1000]

Each user (``ClaudeUser``, a ``FastHttpUser``) posts to ``/v1/messages`` with ``x-api-key`` from
``ANTHROPIC_API_KEY`` (else ``stub``) and ``anthropic-version: 2023-06-01``. The bodies come from
payloads.py: realistic AWS CLI output, logs, ARNs and prose of 1 to 100 KB, generated once per
process into a pool, each with the list of identifiers the gateway masks in it.

Scenarios (``--scenario``), as weighted tasks:
  mixed         json 10, stream 4, conversation 2, complex 1, echo 1 (the default)
  json          JSON messages only (1 KB to --body-kb-max, log-uniform: most are small)
  stream        streamed messages only
  small         JSON messages of 1-2 KB only, for high-rate soak runs
  conversation  three-turn conversations only

Every answer is checked (load/answers.py): status 200; every identifier the request held is back,
restored, in the answer (the Claude stub quotes every token it receives); no token is left; a
stream's events are well formed; in echo mode the answer is exactly the text sent. A failed check
is a Locust failure with a stable name (``identifier not restored``, ``token left in answer``,
``HTTP 502``, ``SSE malformed: no message_stop``, ...: see load/README.md); the first few of each
are logged with counts and categories (``2 of 40 missing: arn 1, s3 1``), never identifiers.
Against the real Claude API (which does not quote tokens back), pass ``--answer-check tokens``:
only the status, the stream's shape and "no token left" are checked then.

Entries (the Name column and the CSV's ``Name``; request type ``POST`` unless noted):
  json <=4 KB, json 4-32 KB, json 32-100 KB    one JSON message, by body size
  stream                                       a streamed message, until its last event
  stream: time to first text delta             (type TTFB) from sending to the first text delta
  conversation turn 1/2/3                      a turn resends the history with the restored answers
  complex request                              the original test plan's request
  echo round trip                              echo mode: the restored answer equals what was sent

Options of this file (also in the web UI's "Custom parameters"):
  --scenario NAME       see above (default mixed)
  --max-requests N      stop after N completed requests (TTFB entries not counted; 0 = no limit). A
                        headless run quits, the web UI stops the test. Per process: each worker of a
                        distributed run applies its own limit.
  --body-kb-min/--body-kb-max KB   sizes of the json bodies (default 1 and 100)
  --answer-check {all,tokens}      see above (default all)
  --think-ms MS         wait between a user's tasks (default 0)
  --payload-seed N      another deterministic set of bodies (default 1)
  --stream-delay-ms MS  ask the Claude stub to wait MS between stream events (header
                        x-stub-event-delay-ms), like a generating model (default 0)

Why FastHttpUser: Locust shares the machine's cores with the gateway, and it costs a fraction of
HttpUser's CPU per request. Its ``iter_content`` waits for a whole chunk of the size asked for, so a
stream is read line by line from the underlying geventhttpclient response (``readline``), which
returns each line as it arrives: the time to the first text delta is measured when it reaches us.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.runners import MasterRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

sys.path.insert(0, str(Path(__file__).resolve().parent))  # payloads.py and answers.py beside this file

from answers import (
    AnswerError,
    SSEStream,
    check_echo,
    check_no_tokens,
    check_restored,
    message_text,
)
from payloads import (
    COMPLEX_TEXT,
    KB,
    Identifier,
    Payload,
    identifiers_of,
    payload,
    request_body,
    sizes,
    user_body,
)

log = logging.getLogger("aws-masker-load")

API_PATH = "/v1/messages"
STREAM = "stream"
TTFB = "stream: time to first text delta"
TTFB_TYPE = "TTFB"
COMPLEX = "complex request"
ECHO = "echo round trip"
TURNS = ("conversation turn 1", "conversation turn 2", "conversation turn 3")
JSON_BANDS = ((4 * KB, "json <=4 KB"), (32 * KB, "json 4-32 KB"), (100 * KB, "json 32-100 KB"))

SCENARIOS: dict[str, dict[str, int]] = {
    "mixed": {"json": 10, "stream": 4, "conversation": 2, "complex": 1, "echo": 1},
    "json": {"json": 1},
    "stream": {"stream": 1},
    "small": {"small": 1},
    "conversation": {"conversation": 1},
}
FOLLOW_UPS = (
    "Thanks. Here is more output from the same account; does it change your answer?\n",
    "One more thing: the logs below are from the failing window. What do they tell you?\n",
)


def json_name(size: int) -> str:
    return next(name for limit, name in JSON_BANDS if size <= limit)


def base_headers() -> dict[str, str]:
    return {
        "x-api-key": os.environ.get("ANTHROPIC_API_KEY") or "stub",
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
    }


# ------------------------------------------------------------------------------------------ options


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("aws-masker load test (load/locustfile.py)")
    group.add_argument("--scenario", choices=sorted(SCENARIOS), default="mixed", help="task mix")
    group.add_argument(
        "--max-requests", type=int, default=0, help="stop after N completed requests (0: no limit)"
    )
    group.add_argument("--body-kb-min", type=int, default=1, help="smallest json body in KB (default 1)")
    group.add_argument("--body-kb-max", type=int, default=100, help="largest json body in KB (default 100)")
    group.add_argument(
        "--answer-check",
        choices=["all", "tokens"],
        default="all",
        help="all: every identifier comes back (stub upstream); tokens: only no token left (real Claude)",
    )
    group.add_argument("--think-ms", type=int, default=0, help="wait between a user's tasks in ms")
    group.add_argument(
        "--stream-delay-ms",
        type=int,
        default=0,
        help="ask the Claude stub to wait this long between stream events, like a generating model",
    )
    group.add_argument("--payload-seed", type=int, default=1, help="seed of the request bodies")


@dataclass(frozen=True)
class Settings:
    scenario: str
    max_requests: int
    body_min: int
    body_max: int
    full_check: bool
    think_s: float
    seed: int
    stream_delay_ms: int = 0

    @classmethod
    def of(cls, env: Environment) -> Settings:
        o = env.parsed_options
        if o is None:  # a library use of Environment without options: the defaults
            return cls("mixed", 0, KB, 100 * KB, True, 0.0, 1)
        low = max(1, int(o.body_kb_min)) * KB
        return cls(
            scenario=str(o.scenario) if str(o.scenario) in SCENARIOS else "mixed",
            max_requests=max(0, int(o.max_requests)),
            body_min=low,
            body_max=max(low, min(100, int(o.body_kb_max)) * KB),
            full_check=str(o.answer_check) != "tokens",
            think_s=max(0, int(o.think_ms)) / 1000,
            seed=int(o.payload_seed),
            stream_delay_ms=min(10_000, max(0, int(o.stream_delay_ms))),
        )


# --------------------------------------------------------------------------------------------- pool


@dataclass(frozen=True)
class Pool:
    """Every body a run sends, built once per process before the users start."""

    json: list[Payload]
    small: list[Payload]
    stream: list[Payload]
    echo: list[Payload]
    conversations: list[tuple[str, str, str]]
    complex_body: bytes
    complex_ids: tuple[Identifier, ...]


def build_pool(s: Settings) -> Pool:
    rnd = random.Random(s.seed)

    def make(base: int, count: int, low: int, high: int) -> list[Payload]:
        high = max(low, min(high, s.body_max))
        return [payload(base + n, size) for n, size in enumerate(sizes(rnd, count, low, high))]

    turns = make(s.seed * 10_000 + 4000, 24, KB, 6 * KB)
    conversations = [
        (turns[n].text, FOLLOW_UPS[0] + turns[n + 1].text, FOLLOW_UPS[1] + turns[n + 2].text)
        for n in range(0, len(turns), 3)
    ]
    complex_body = user_body(COMPLEX_TEXT)
    return Pool(
        json=make(s.seed * 10_000, 64, s.body_min, s.body_max),
        small=make(s.seed * 10_000 + 1000, 32, KB, 2 * KB),
        stream=make(s.seed * 10_000 + 2000, 16, KB, 32 * KB),
        echo=make(s.seed * 10_000 + 3000, 8, KB, 8 * KB),
        conversations=conversations,
        complex_body=complex_body,
        complex_ids=identifiers_of(complex_body),
    )


_pools: dict[Settings, Pool] = {}


def pool_for(s: Settings) -> Pool:
    if s not in _pools:
        _pools[s] = build_pool(s)
    return _pools[s]


# ------------------------------------------------------------------------------------ request budget


class Budget:
    """``--max-requests``: hands out at most N requests and stops the run when N have completed."""

    def __init__(self) -> None:
        self.limit = self.started = self.done = 0
        self.env: Environment | None = None

    def reset(self, env: Environment, limit: int) -> None:
        self.env, self.limit, self.started, self.done = env, limit, 0, 0

    def take(self) -> bool:
        if self.limit and self.started >= self.limit:
            return False
        self.started += 1
        return True

    def completed(self, request_type: str) -> None:
        if request_type == TTFB_TYPE or not self.limit:
            return
        self.done += 1
        if self.done == self.limit and self.env is not None and self.env.runner is not None:
            runner = self.env.runner
            # from a greenlet of its own: stopping kills the users, this one among them
            gevent.spawn(runner.stop if self.env.web_ui is not None else runner.quit)


BUDGET = Budget()


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    s = Settings.of(environment)
    BUDGET.reset(environment, s.max_requests)
    if not isinstance(environment.runner, MasterRunner):  # a master sends no request
        pool_for(s)  # before the users start, so no request pays for it


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    """Locust's --csv writer rewrites the files once a second and does not write them again at exit:
    give it one more turn, so that PREFIX_stats.csv holds every request of the run."""
    options = environment.parsed_options
    if options is not None and getattr(options, "csv_prefix", None):
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.25)


@events.request.add_listener
def _on_request(request_type: str, **_: Any) -> None:
    BUDGET.completed(request_type)


# --------------------------------------------------------------------------------------------- user


class ClaudeUser(FastHttpUser):
    """A client of the gateway's Claude Messages API; see the module docstring."""

    network_timeout = 120.0
    connection_timeout = 10.0

    def wait_time(self) -> float:
        return Settings.of(self.environment).think_s

    def on_start(self) -> None:
        self.rnd = random.Random()
        self.headers = base_headers()
        self.stream_headers = {**self.headers, "accept": "text/event-stream", "accept-encoding": "identity"}

    @task
    def run_scenario(self) -> None:
        s = Settings.of(self.environment)
        pool = pool_for(s)
        mix = SCENARIOS[s.scenario]
        (kind,) = self.rnd.choices(list(mix), list(mix.values()))
        if not BUDGET.take():
            gevent.sleep(0.2)  # the run is about to stop
            return
        if kind == "json":
            self.json_message(self.rnd.choice(pool.json), s.full_check)
        elif kind == "small":
            self.json_message(self.rnd.choice(pool.small), s.full_check)
        elif kind == "stream":
            self.stream_message(self.rnd.choice(pool.stream), s.full_check, s.stream_delay_ms)
        elif kind == "conversation":
            self.conversation(self.rnd.choice(pool.conversations), s.full_check)
        elif kind == "complex":
            self.post(COMPLEX, pool.complex_body, self.restored(pool.complex_ids, s.full_check))
        elif kind == "echo":
            self.echo(self.rnd.choice(pool.echo), s.full_check)

    # -- tasks --------------------------------------------------------------------------------------
    def json_message(self, p: Payload, full: bool) -> None:
        self.post(json_name(len(p.data)), p.data, self.restored(p.identifiers, full))

    def echo(self, p: Payload, full: bool) -> None:
        body = request_body([{"role": "user", "content": p.text}], metadata={"user_id": "echo"})
        self.post(ECHO, body, (lambda text: check_echo(text, p.text)) if full else check_no_tokens)

    def conversation(self, texts: tuple[str, str, str], full: bool) -> None:
        """Three turns; each resends the history, with the answers as the client got them
        (restored), so the gateway masks them again."""
        messages: list[dict[str, object]] = []
        for n, (name, text) in enumerate(zip(TURNS, texts, strict=True)):
            if n and not BUDGET.take():
                return
            messages.append({"role": "user", "content": text})
            body = request_body(messages)
            answer = self.post(name, body, self.restored(identifiers_of(body), full))
            if answer is None:
                return
            messages.append({"role": "assistant", "content": answer})

    @staticmethod
    def restored(ids: tuple[Identifier, ...], full: bool) -> Callable[[str], None]:
        return (lambda text: check_restored(text, ids)) if full else check_no_tokens

    # -- HTTP ---------------------------------------------------------------------------------------
    def post(self, name: str, body: bytes, check: Callable[[str], None]) -> str | None:
        """POST a JSON message; the answer's text if every check passed, else None (a failure)."""
        with self.client.request(
            "POST", API_PATH, name=name, data=body, headers=self.headers, catch_response=True
        ) as resp:
            try:
                _check_status(resp)
                text = message_text(resp.content or b"")
                check(text)
            except AnswerError as exc:
                _fail(resp, name, exc)
                return None
            resp.success()
            return text

    def stream_message(self, p: Payload, full: bool, delay_ms: int = 0) -> None:
        """POST a streamed message, check the events as they come, report the whole stream and,
        as its own entry, the time to the first text delta."""
        headers = self.stream_headers
        if delay_ms:
            headers = {**headers, "x-stub-event-delay-ms": str(delay_ms)}
        start = time.perf_counter()
        length = 0
        with self.client.request(
            "POST",
            API_PATH,
            name=STREAM,
            data=p.stream_data,
            headers=headers,
            stream=True,
            catch_response=True,
        ) as resp:
            try:
                _check_status(resp)
                sse = SSEStream()
                raw = resp._response  # geventhttpclient's response: readline returns lines as they come
                while line := raw.readline(b"\n"):
                    length += len(line)
                    piece = sse.feed_line(line.decode("utf-8").rstrip("\r\n"))
                    if piece is not None and len(sse.pieces) == 1:
                        self.environment.events.request.fire(
                            request_type=TTFB_TYPE,
                            name=TTFB,
                            response_time=(time.perf_counter() - start) * 1000,
                            response_length=0,
                            exception=None,
                            context={},
                        )
                text = sse.finish()
                if full:
                    check_restored(text, p.identifiers)
                else:
                    check_no_tokens(text)
                resp.success()
            except AnswerError as exc:
                _fail(resp, STREAM, exc)
            except (OSError, ValueError, HTTPException) as exc:  # cut connection, bad chunking or UTF-8
                resp.failure(f"stream broken: {type(exc).__name__}")
            finally:  # with stream=True Locust timed the headers only
                resp.request_meta["response_time"] = (time.perf_counter() - start) * 1000
                resp.request_meta["response_length"] = length


_logged: Counter[str] = Counter()
LOG_PER_FAILURE = 5


def _fail(resp: Any, name: str, exc: AnswerError) -> None:
    """Report a failed check under its stable name; log its detail (counts, categories) the first
    few times."""
    resp.failure(str(exc))
    key = f"{name}: {exc}"
    _logged[key] += 1
    if exc.detail and _logged[key] <= LOG_PER_FAILURE:
        log.warning("%s: %s (%s)", name, exc, exc.detail)


def _check_status(resp: Any) -> None:
    """A 200 whose body (unless streamed) was read whole, else the failure: ``HTTP <status>`` or
    ``connection error: <exception type>`` (no connection, or cut while the body was read)."""
    status = resp.status_code
    error = resp.request_meta.get("exception") or getattr(resp, "error", None)
    if status == 200:
        if error is not None:
            raise AnswerError(f"connection error: {type(error).__name__}")
        return
    if not status:
        raise AnswerError(f"connection error: {type(error).__name__}")
    with contextlib.suppress(Exception):  # only draining the body, so the connection can be reused
        resp.content  # noqa: B018
    raise AnswerError(f"HTTP {status}")
