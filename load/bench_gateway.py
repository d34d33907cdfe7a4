"""Gateway benchmark: ``make bench-gateway``.

Measures, side by side in one run through one local gateway (``aws-masker gateway``, in this
process) and one upstream (a fixed, fast Claude stand-in in its own process):

- **none**: a route with no plugin;
- **noop**: a do-nothing external plugin (``load/noop_plugin.py``: ``access`` only, no PDK call),
  the floor under any Python plugin;
- **aws-masker**: the product as kong.yml configures it: aws-masker-collect, aws-masker,
  aws-masker-restore and the fail-closed guard, monitoring off;
- **aws-masker+events**: the same with monitoring on, every request sampled, batches of 10, to a
  private redis-server the benchmark starts.

Each request posts the same 8 KB AWS-heavy prompt (prose plus ``describe-instances`` output); the
upstream answers every route with the same JSON body, which carries 20 of the masked prompt's
tokens, so the aws-masker route restores them. Cases, all interleaved (every round runs every mode,
in shuffled order, so a slow spell of this shared machine hits them alike):

- one client at a time: latency p50/p95;
- 8 concurrent clients for a few seconds: requests per second;
- a stream whose upstream waits 50 ms between events: time to the first text delta.

Beside the numbers it reports where the aws-masker route's time goes per request: the gateway's
waits on the plugin server (what Kong would wait too) and its own PDK emulation (what Kong would
serve in Lua in microseconds), and the PDK calls per phase. Last, monitoring's memory: pairs of fresh
plugin servers, monitoring off and on, sent the same requests. Clients run in a separate process.

Writes docs/benchmarks.md between the ``bench-gateway`` markers. Benchmarks are not tests: nothing
here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil
from bench_engine import prompt_8k
from benchlib import machine, pct, write_section

from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker_gateway.app import Gateway, create_gateway, run_site, shutdown_site
from aws_masker_gateway.orphans import die_with_parent
from aws_masker_gateway.settings import load_settings
from aws_masker_stack.localredis import private_server_argv
from aws_masker_stack.ports import free_ports

START, END = "<!-- bench-gateway:start -->", "<!-- bench-gateway:end -->"
ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-gateway-secret-0123"
MODES = ("none", "noop", "aws-masker", "aws-masker+events")
ROUTES = {"none": "/none", "noop": "/noop", "aws-masker": "/masker", "aws-masker+events": "/events"}
SEQ_BLOCKS = 8  # blocks per round of the one-at-a-time requests (50 requests of each mode each)
CONCURRENCY = 8
MEMORY_PAIRS = 3  # pairs of fresh plugin servers, monitoring off and on, for the RSS comparison
STREAM_EVENTS = 12
STREAM_DELAY = 0.05


# -- the upstream (its own process) ------------------------------------------------------------------


def upstream_main(port: int, answer_text: str) -> None:
    from aiohttp import web

    body = json.dumps(
        {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": "bench",
            "content": [{"type": "text", "text": answer_text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 2048, "output_tokens": 200},
        },
        separators=(",", ":"),
    ).encode()

    async def messages(request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.query.get("stream") != "1":
            return web.Response(body=body, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        words = answer_text.split(" ")
        step = max(1, len(words) // STREAM_EVENTS)
        for i in range(0, len(words), step):
            if i:
                await asyncio.sleep(STREAM_DELAY)
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": " ".join(words[i : i + step]) + " "},
            }
            await response.write(f"event: content_block_delta\ndata: {json.dumps(delta)}\n\n".encode())
        await response.write_eof()
        return response

    app = web.Application(client_max_size=1 << 26)
    app.router.add_post("/{tail:.*}", messages)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- the clients (their own process) -----------------------------------------------------------------


async def _client(job: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    body = job["body"].encode()
    headers = {"content-type": "application/json", "x-api-key": "bench", "anthropic-version": "2023-06-01"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(url: str) -> float:
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{url}: HTTP {resp.status}")
            return time.perf_counter() - t0

        if job["kind"] == "sequential":
            return {"latencies": [await one(job["url"]) for _ in range(job["n"])]}
        if job["kind"] == "blocks":  # [[url, n], ...] in order, one latency list per block
            blocks = []
            for url, n in job["blocks"]:  # (a loop: Python 3.10 has no await in a nested comprehension)
                blocks.append([await one(url) for _ in range(n)])
            return {"blocks": blocks}
        if job["kind"] == "concurrent":
            deadline = time.perf_counter() + job["seconds"]
            done = 0

            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < deadline:
                    await one(job["url"])
                    done += 1

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(job["concurrency"])))
            return {"rps": done / (time.perf_counter() - t0), "done": done}
        if job["kind"] == "count":  # exactly n requests, by `concurrency` clients at once
            left = job["n"]

            async def counted() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    await one(job["url"])

            await asyncio.gather(*(counted() for _ in range(job["concurrency"])))
            return {"done": job["n"]}
        ttfb = []
        for _ in range(job["n"]):
            t0 = time.perf_counter()
            async with session.post(job["url"] + "?stream=1", data=body, headers=headers) as resp:
                async for line in resp.content:
                    if b"text_delta" in line:
                        ttfb.append(time.perf_counter() - t0)
                        break
                await resp.read()
        return {"ttfb": ttfb}


def client_main() -> None:
    job = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(_client(job))))


def run_client(job: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--client"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"client failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


# -- the gateway (this process) ----------------------------------------------------------------------


def kong_yml(upstream: str, redis_port: int) -> str:
    guard = (
        "if kong.ctx.shared.aws_masker == nil then "
        "return kong.response.exit(503, { error = 'AWS_MASKER_1003' }) end"
    )
    events = (
        f'token_secret: "{SECRET}", enable_event_monitoring: true, event_sampling_rate: 1.0, '
        f"event_batch_size: 10, redis_host: 127.0.0.1, redis_port: {redis_port}"
    )
    return f"""_format_version: "3.0"
services:
  - name: upstream
    url: {upstream}/v1/messages
    retries: 0
    routes:
      - {{name: none, paths: ["/none"], response_buffering: false}}
      - name: noop
        paths: ["/noop"]
        response_buffering: false
        plugins: [{{name: noop}}]
      - name: masker
        paths: ["/masker"]
        response_buffering: false
        plugins:
          - {{name: aws-masker-collect}}
          - {{name: aws-masker, config: {{token_secret: "{SECRET}"}}}}
          - {{name: aws-masker-restore}}
          - name: post-function
            config: {{access: ["{guard}"]}}
      - name: events
        paths: ["/events"]
        response_buffering: false
        plugins:
          - {{name: aws-masker-collect}}
          - {{name: aws-masker, config: {{{events}}}}}
          - {{name: aws-masker-restore}}
          - name: post-function
            config: {{access: ["{guard}"]}}
"""


class RunningGateway:
    def __init__(self, upstream: str, prefix: Path, redis_port: int) -> None:
        server = Path(sys.executable).with_name("aws-masker-server")
        noop = f"{sys.executable} {ROOT}/load/noop_plugin.py"
        env = {
            "KONG_PLUGINS": "bundled,aws-masker,aws-masker-restore,aws-masker-collect,noop",
            "KONG_PLUGINSERVER_NAMES": "aws-masker,noop",
            "KONG_PLUGINSERVER_AWS_MASKER_SOCKET": f"{prefix}/aws-masker.sock",
            "KONG_PLUGINSERVER_AWS_MASKER_START_CMD": f"{server} --kong-prefix {prefix}",
            "KONG_PLUGINSERVER_AWS_MASKER_QUERY_CMD": f"{server} --dump",
            "KONG_PLUGINSERVER_NOOP_SOCKET": f"{prefix}/noop.sock",
            "KONG_PLUGINSERVER_NOOP_START_CMD": f"{noop} --kong-prefix {prefix}",
            "KONG_PLUGINSERVER_NOOP_QUERY_CMD": f"{noop} --dump",
            "KONG_LUA_PACKAGE_PATH": f"{ROOT}/?.lua;;",
        }
        self.gateway: Gateway = create_gateway(
            load_settings(env=env, prefix=str(prefix)), kong_yml(upstream, redis_port)
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = self._call(self._start())

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(120)

    async def _start(self) -> int:
        await self.gateway.start()
        await self.gateway.wait_ready(60)
        self.runner, port = await run_site(self.gateway.make_app(), "127.0.0.1", 0)
        return port

    def record_ids(self) -> set[str]:
        async def ids() -> set[str]:
            return set(self.gateway.records)

        return self._call(ids())

    def records_since(self, before: set[str]) -> list[Any]:
        async def since() -> list[Any]:
            await asyncio.sleep(0.2)  # the last request's log phase
            return [r for k, r in self.gateway.records.items() if k not in before]

        return self._call(since())

    def stop(self) -> None:
        async def stop() -> None:
            await shutdown_site(self.runner)
            await self.gateway.stop()

        self._call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def monitoring_memory(
    upstream: str, redis_port: int, body: str, shape: tuple[int, int, int], progress: Any
) -> list[tuple[int, int]]:
    """The aws-masker plugin server's RSS with monitoring off and on, per pair of fresh processes.

    Each pair is two gateways, each with its own plugin server, sent the same requests interleaved:
    one only on the aws-masker route, the other only on aws-masker+events. A plugin instance starts
    on its route's first request, so each plugin server holds one instance and they differ in
    monitoring alone (its queue, publisher thread, Redis connection and event building).
    """
    import redis

    def publishes() -> int:
        with redis.Redis(port=redis_port) as client:
            return int(client.info("commandstats").get("cmdstat_publish", {}).get("calls", 0))

    pairs, rounds, per_round = shape
    results = []
    for pair in range(pairs):
        published = publishes()
        with tempfile.TemporaryDirectory() as off_dir, tempfile.TemporaryDirectory() as on_dir:
            gws = {
                "aws-masker": RunningGateway(upstream, Path(off_dir), redis_port),
                "aws-masker+events": RunningGateway(upstream, Path(on_dir), redis_port),
            }
            try:
                for r in range(rounds):
                    progress(f"memory, pair {pair + 1}/{pairs}: round {r + 1}/{rounds}")
                    for mode in random.sample(list(gws), len(gws)):
                        url = f"http://127.0.0.1:{gws[mode].port}{ROUTES[mode]}"
                        run_client({"kind": "sequential", "url": url, "n": per_round // 4, "body": body})
                        job = {"kind": "count", "url": url, "n": per_round, "concurrency": CONCURRENCY}
                        run_client({**job, "body": body})
                rss = {
                    mode: psutil.Process(gw.gateway.processes["aws-masker"].pid).memory_info().rss
                    for mode, gw in gws.items()
                }
            finally:
                for gw in gws.values():
                    gw.stop()
        if publishes() == published:
            raise RuntimeError("the monitoring plugin server published no events: the comparison is void")
        results.append((rss["aws-masker"], rss["aws-masker+events"]))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="a few requests only (a smoke test)")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    seq_n, conc_s, ttfb_n, warm_n = (20, 0.5, 2, 20) if args.quick else (400, 3.0, 5, 200)
    memory_shape = (1, 1, 40) if args.quick else (MEMORY_PAIRS, 4, 400)
    seq_blocks = 2 if args.quick else SEQ_BLOCKS

    prompt = prompt_8k()
    body = json.dumps(
        {"model": "bench", "max_tokens": 512, "messages": [{"role": "user", "content": prompt}]}
    )
    _, masked = Masker(MaskerConfig(token_secret=SECRET)).mask_text(prompt)
    tokens = list(masked.tokens)[:20]
    answer = "Looking at " + ", ".join(tokens) + ": the instances look healthy."

    port, redis_port = free_ports(2)
    upstream = subprocess.Popen(
        [sys.executable, __file__, "--upstream", str(port), answer],
        stdout=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    redis_dir = tempfile.TemporaryDirectory()
    redis_argv = private_server_argv(Path(redis_dir.name), redis_port)
    if redis_argv is None:
        print("bench-gateway: redis-server is not installed (scripts/system-deps.sh test)", file=sys.stderr)
        return 1
    redis_proc = subprocess.Popen(redis_argv, stdout=subprocess.DEVNULL, preexec_fn=die_with_parent)

    def progress(msg: str) -> None:
        print(f"bench-gateway: {msg}", file=sys.stderr, flush=True)

    try:
        for _ in range(100):
            try:
                import urllib.request

                urllib.request.urlopen(
                    urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"{}"), timeout=1
                )
                break
            except OSError:
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            gw = RunningGateway(f"http://127.0.0.1:{port}", Path(tmp), redis_port)
            plugin_server = psutil.Process(gw.gateway.processes["aws-masker"].pid)
            try:
                url = f"http://127.0.0.1:{gw.port}"
                progress("warming up (monitoring not used yet)")
                for mode in ("aws-masker", "noop", "none"):
                    run_client({"kind": "sequential", "url": url + ROUTES[mode], "n": warm_n, "body": body})
                # the plugin server's threads and allocator arenas grow to the concurrency first
                run_client(
                    {
                        "kind": "concurrent",
                        "url": url + ROUTES["aws-masker"],
                        "seconds": conc_s,
                        "concurrency": CONCURRENCY,
                        "body": body,
                    }
                )
                latency: dict[str, list[float]] = {m: [] for m in MODES}
                rps: dict[str, list[float]] = {m: [] for m in MODES}
                # CPU seconds each process spent on the concurrent runs, and the requests they served
                procs = {
                    "gateway": psutil.Process(),
                    "plugin server": plugin_server,
                    "noop plugin server": psutil.Process(gw.gateway.processes["noop"].pid),
                    "upstream": psutil.Process(upstream.pid),
                }
                cpu: dict[str, dict[str, float]] = {m: dict.fromkeys(procs, 0.0) for m in MODES}
                served: dict[str, int] = dict.fromkeys(MODES, 0)
                ttfb: dict[str, list[float]] = {m: [] for m in ("none", "aws-masker")}
                records: list[Any] = []
                # per mode, the p50 of each block of requests one at a time (paired comparisons)
                block_p50: dict[str, list[float]] = {m: [] for m in MODES}
                for r in range(rounds):
                    # one client at a time: the round's requests of each mode in blocks, every block
                    # running the modes in its own shuffled order, so that a slow spell of this shared
                    # machine (seconds long) hits the modes alike and block by block comparisons pair
                    # requests sent within a second of each other
                    schedule = [mode for _ in range(seq_blocks) for mode in random.sample(MODES, len(MODES))]
                    progress(
                        f"round {r + 1}/{rounds}: one client at a time ({seq_blocks} blocks of each mode)"
                    )
                    before = gw.record_ids()
                    job = {
                        "kind": "blocks",
                        "blocks": [[url + ROUTES[mode], seq_n // seq_blocks] for mode in schedule],
                        "body": body,
                    }
                    for mode, block in zip(schedule, run_client(job)["blocks"], strict=True):
                        latency[mode] += block
                        block_p50[mode].append(statistics.median(block))
                    # (the aws-masker route is the one kong_yml names "masker")
                    records += [rec for rec in gw.records_since(before) if rec.route == "masker"]
                    progress(f"round {r + 1}/{rounds}: {CONCURRENCY} concurrent clients")
                    for mode in random.sample(MODES, len(MODES)):
                        job = {
                            "kind": "concurrent",
                            "url": url + ROUTES[mode],
                            "seconds": conc_s,
                            "concurrency": CONCURRENCY,
                            "body": body,
                        }
                        before_cpu = {name: _cpu(p) for name, p in procs.items()}
                        result = run_client(job)
                        for name, p in procs.items():
                            cpu[mode][name] += _cpu(p) - before_cpu[name]
                        served[mode] += result["done"]
                        rps[mode].append(result["rps"])
                    progress(f"round {r + 1}/{rounds}: streams")
                    for mode in ttfb:
                        job = {"kind": "ttfb", "url": url + ROUTES[mode], "n": ttfb_n, "body": body}
                        ttfb[mode] += run_client(job)["ttfb"]
            finally:
                gw.stop()
        memory = monitoring_memory(f"http://127.0.0.1:{port}", redis_port, body, memory_shape, progress)
    finally:
        upstream.terminate()
        upstream.wait(10)
        redis_proc.terminate()
        redis_proc.wait(10)
        redis_dir.cleanup()

    cpu_ms = {m: {name: 1000 * s / max(1, served[m]) for name, s in cpu[m].items()} for m in MODES}
    section = report(
        latency,
        block_p50,
        rps,
        ttfb,
        records,
        (rounds, seq_blocks),
        seq_n,
        conc_s,
        memory,
        cpu_ms,
    )
    print(section)
    write_section(args.out, START, END, section)
    progress(f"wrote {args.out}")
    return 0


def _cpu(process: psutil.Process) -> float:
    """User plus system CPU seconds of a process so far (all its threads)."""
    times = process.cpu_times()
    return times.user + times.system


def report(
    latency: dict[str, list[float]],
    block_p50: dict[str, list[float]],
    rps: dict[str, list[float]],
    ttfb: dict[str, list[float]],
    records: list[Any],
    shape: tuple[int, int],
    seq_n: int,
    conc_s: float,
    memory: list[tuple[int, int]],
    cpu_ms: dict[str, dict[str, float]],
) -> str:
    def ms(x: float) -> str:
        return f"{x * 1000:.2f}"

    rounds, blocks = shape
    p50 = {m: statistics.median(v) for m, v in latency.items()}
    thr = {m: statistics.median(v) for m, v in rps.items()}
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        "## Gateway (`make bench-gateway`)",
        "",
        f"- Run: {now}; machine: {machine()}; command: `make bench-gateway`.",
        f"- {rounds} interleaved rounds; per round and mode: {seq_n} requests one at a time (in "
        f"{blocks} blocks of {seq_n // blocks}, the modes' blocks in shuffled order), {CONCURRENCY} "
        f"concurrent clients for {conc_s:g} s, and streams.",
        "- Same local gateway, same upstream, same 8 KB prompt; the answer carries 20 tokens.",
        "",
        "| mode | p50 ms | p95 ms | p50 over none | req/s, 8 clients | share of none | share of noop |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        lines.append(
            f"| {mode} | {ms(p50[mode])} | {ms(pct(latency[mode], 0.95))} | "
            f"+{ms(p50[mode] - p50['none'])} | {thr[mode]:.0f} | {thr[mode] / thr['none']:.0%} | "
            f"{thr[mode] / thr['noop']:.0%} |"
        )
    off, on = p50["aws-masker"], p50["aws-masker+events"]
    # paired: each block of aws-masker+events against the aws-masker block of the same round and slot
    paired = sorted(
        e / m - 1 for e, m in zip(block_p50["aws-masker+events"], block_p50["aws-masker"], strict=True)
    )
    quartiles = statistics.quantiles(paired, n=4) if len(paired) > 1 else [paired[0]] * 3
    lines += [
        "",
        f"Monitoring at 100% sampling, batches of 10 (aws-masker+events against aws-masker): p50 "
        f"{(on - off) / off:+.1%} (block by block, paired: median {quartiles[1]:+.1%}, quartiles "
        f"{quartiles[0]:+.1%} to {quartiles[2]:+.1%} over {len(paired)} pairs of blocks), throughput "
        f"{thr['aws-masker+events'] / thr['aws-masker'] - 1:+.1%}.",
        "",
        "Monitoring's memory: the aws-masker plugin server's RSS with monitoring off and on, two fresh "
        "plugin servers (one plugin instance each) sent the same requests interleaved, per pair: "
        + "; ".join(
            f"{off / 2**20:.1f} and {on / 2**20:.1f} MB ({(on - off) / 2**20:+.1f})" for off, on in memory
        )
        + f"; median difference {statistics.median((on - off) / 2**20 for off, on in memory):+.1f} MB.",
    ]
    lines += [
        "",
        f"Time to the first text delta of a stream (upstream waits {STREAM_DELAY * 1000:.0f} ms between "
        f"events): none p50 {ms(statistics.median(ttfb['none']))} ms, aws-masker p50 "
        f"{ms(statistics.median(ttfb['aws-masker']))} ms.",
    ]
    names = list(next(iter(cpu_ms.values())))
    lines += [
        "",
        f"CPU per request with {CONCURRENCY} concurrent clients (ms of user + system time per request "
        "served, all rounds): the gateway is this emulation of Kong (its proxying, PDK calls, Lua "
        "plugins and log phase), the plugin servers are what Kong would run as they are.",
        "",
        "| mode | " + " | ".join(names) + " | all |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for mode in MODES:
        row = cpu_ms[mode]
        lines.append(
            f"| {mode} | " + " | ".join(f"{row[n]:.2f}" for n in names) + f" | {sum(row.values()):.2f} |"
        )
    if records:
        rpc = [r.rpc_seconds for r in records]
        pdk = [r.pdk_seconds for r in records]
        lua = [r.lua_seconds for r in records]
        calls = statistics.median(r.pdk_call_total for r in records)
        phases = {}
        for r in records:
            for phase, n in r.pdk_phases.items():
                phases.setdefault(phase, []).append(n)
        per_phase = ", ".join(f"{p} {statistics.median(v):.0f}" for p, v in phases.items())
        lines += [
            "",
            f"Where the aws-masker route's time goes, per request (median of {len(records)}, one client "
            "at a time): "
            f"waiting on the plugin server {ms(statistics.median(rpc))} ms (HandleEvent and the Step "
            f"round trips, which include the masking itself); serving its PDK calls in this gateway "
            f"{ms(statistics.median(pdk))} ms; running the Lua plugins' phases (aws-masker-collect, "
            f"aws-masker-restore, the guard) in this gateway's LuaJIT {ms(statistics.median(lua))} ms; "
            f"PDK calls {calls:.0f} ({per_phase}).",
        ]
    lines.append(END)
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--upstream":
        upstream_main(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main()
    else:
        sys.exit(main())
