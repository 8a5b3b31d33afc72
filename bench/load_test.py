"""Load test: N concurrent clients against ``souyi serve`` for T seconds, optionally with a writer.

    python -m bench.load_test --index /tmp/souyi-100k --clients 16 --duration 300 --writer \
        --json /tmp/load_100k.json                 # then: python -m bench.reliability --load /tmp/load_100k.json
    python -m bench.load_test --index /tmp/souyi-100k --clients 16 --duration 60 --perf docs/perf/web_load.json

Starts ``python -m souyi serve --index INDEX`` on a free loopback port (or
uses ``--url`` of a server already running), waits for ``/api/health``, then
runs ``--clients`` threads, each sending ``GET /api/search`` one after the
other over its own keep-alive connection (http.client) for ``--duration``
seconds.  Queries cycle through a fixed list of Chinese and English
questions, modes and k (deterministic, so two runs send the same requests).
With ``--writer``, a separate process runs ``souyi add`` every
``--write-every`` seconds on a new small document (so readers move across
committed generations while they search).  The server's RSS is sampled every
``--sample-every`` seconds from /proc.

Prints and writes (``--json``): requests, requests/s, p50/p99/max latency in
ms, errors by kind (any non-200 answer or connection failure), writer
batches and failures, RSS samples, and RSS (median) over the first and the
last minute (or the first and last sixth of a shorter run), and their ratio.
``--perf FILE`` also writes the figures as a table of the performance report
(``docs/perf/web_load.json``; schema in bench/common.py).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from bench.common import ROOT, machine, parser_for, rss_bytes, write_json, write_perf

QUERIES = (
    "阿里巴巴在哪里上市", "软件和信息服务业的发展目标", "Where did Alibaba go public?", "港口货物吞吐量",
    "电子商务", "How fast did software revenue grow?", "杭州软件服务外包", "信息产业", "集成电路设计",
    "What is the plan for the software industry?", "宁波", "人才培养",
)
MODES = ("hybrid", "hybrid", "dense", "lexical")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(host: str, port: int, timeout: float, server: subprocess.Popen | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise SystemExit(f"souyi serve exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"no healthy answer from {host}:{port} in {timeout} s")


def request_paths(client: int) -> list[str]:
    """The requests one client cycles through (deterministic, differs per client)."""
    paths = []
    for i in range(len(QUERIES) * len(MODES)):
        query = QUERIES[(client + i) % len(QUERIES)]
        paths.append("/api/search?" + urlencode({"q": query, "mode": MODES[i % len(MODES)], "k": 10}))
    return paths


class Results:
    """Latencies and errors of all clients (appends are atomic under the GIL; one lock for the dict)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.lock = threading.Lock()

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1


def client_loop(host: str, port: int, client: int, stop_at: float, results: Results) -> None:
    paths = request_paths(client)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    i = 0
    while time.monotonic() < stop_at:
        path = paths[i % len(paths)]
        i += 1
        started = time.perf_counter()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                results.error(f"HTTP {response.status}")
                continue
            json.loads(body)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            results.error(type(exc).__name__)
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
            continue
        results.latencies.append((time.perf_counter() - started) * 1000)
    conn.close()


def writer_loop(index: str, every: float, stop_at: float, env: dict, outcome: dict) -> None:
    """``souyi add`` of one new small document every ``every`` seconds (each a new process, as a user would)."""
    folder = Path(tempfile.mkdtemp(prefix="souyi-load-writer-"))
    number = 0
    while time.monotonic() + every < stop_at:
        time.sleep(every)
        doc = folder / f"load-{os.getpid()}-{number:05d}.txt"
        doc.write_text(f"负载测试文件{number}：浙江省港口货物吞吐量与软件服务外包的统计。\n", encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "souyi", "add", str(doc), "--index", index, "-q"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        outcome["batches" if done.returncode == 0 else "failures"] += 1
        if done.returncode:
            outcome.setdefault("messages", []).append(done.stderr.strip()[-300:])
        number += 1


def window_median(samples: list[tuple[float, int]], start: float, end: float) -> int | None:
    values = [rss for t, rss in samples if start <= t <= end]
    return int(statistics.median(values)) if values else None


def start_server(index: str, threads: int, log_file: str | None,
                 extra: Sequence[str] = ()) -> tuple[subprocess.Popen, int]:
    """``souyi serve`` of ``index`` (and ``extra`` options) on a free loopback port, as its own process: the
    process and the port."""
    port = free_port()
    log = open(log_file, "wb") if log_file else subprocess.DEVNULL
    server = subprocess.Popen(
        [sys.executable, "-m", "souyi", "serve", "--index", index, "--port", str(port), "--threads", str(threads),
         *extra],
        cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
    )
    return server, port


def load_window(host: str, port: int, clients: int, seconds: float, pid: int, sample_every: float,
                also: Sequence[threading.Thread] = ()) -> tuple[Results, list[tuple[float, int]], float]:
    """``clients`` threads searching for ``seconds`` (with the threads ``also``, started with them), the
    server's RSS (of ``pid``, when given) sampled meanwhile: the results, the samples and the window's length."""
    results = Results()
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    stop_at = started + seconds
    threads = [threading.Thread(target=client_loop, args=(host, port, c, stop_at, results), daemon=True)
               for c in range(clients)]
    for thread in [*threads, *also]:
        thread.start()
    while time.monotonic() < stop_at:
        if pid:
            samples.append((time.monotonic() - started, rss_bytes(pid)))
        time.sleep(min(sample_every, max(0.0, stop_at - time.monotonic())))
    if pid:
        samples.append((time.monotonic() - started, rss_bytes(pid)))
    for thread in [*threads, *also]:
        thread.join(timeout=120)
    return results, samples, stop_at - started  # the load window (a writer still running may make the join longer)


def latency_summary(results: Results, elapsed: float) -> dict:
    """Requests, errors and latency percentiles of one load window."""
    latencies = sorted(results.latencies)
    errors = sum(results.errors.values())
    return {
        "requests": len(latencies) + errors,
        "ok": len(latencies),
        "errors": errors,
        "errors_by_kind": results.errors,
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "latency_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p99": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1)
        if latencies else None,
        "latency_ms_max": round(latencies[-1], 1) if latencies else None,
    }


def run(args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    server = None
    if args.url:
        parts = urlsplit(args.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        pid = args.server_pid
    else:
        host = "127.0.0.1"
        server, port = start_server(args.index, args.threads, args.server_log)
        pid = server.pid
    try:
        wait_healthy(host, port, args.start_timeout, server)
        writer = {"batches": 0, "failures": 0}
        also = []
        if args.writer:
            also.append(threading.Thread(target=writer_loop, daemon=True,
                                         args=(args.index, args.write_every, time.monotonic() + args.duration, env,
                                               writer)))
        results, samples, elapsed = load_window(host, port, args.clients, args.duration, pid, args.sample_every, also)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
    window = 60.0 if args.duration >= 180 else args.duration / 6
    first = window_median(samples, 0, window)
    last = window_median(samples, elapsed - window, elapsed)
    return {
        "index": args.index,
        "clients": args.clients,
        "server_threads": args.threads,
        "duration_s": round(elapsed, 1),
        "writer": writer if args.writer else None,
        **latency_summary(results, elapsed),
        "rss_window_s": round(window, 1),
        "rss_mb_first_window": round(first / 2**20, 1) if first else None,
        "rss_mb_last_window": round(last / 2**20, 1) if last else None,
        "rss_last_over_first": round(last / first, 3) if first and last else None,
        "rss_samples_mb": [(round(t, 1), round(rss / 2**20, 1)) for t, rss in samples],
    }


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__, summary_only=True)
    parser.add_argument("--index", required=True, help="index directory to serve (and to add to with --writer)")
    parser.add_argument("--url", help="load an already running server instead of starting one")
    parser.add_argument("--server-pid", type=int, default=0, help="with --url: the server's pid, to sample its RSS")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--threads", type=int, default=4, help="souyi serve --threads")
    parser.add_argument("--writer", action="store_true", help="add a document with souyi add during the run")
    parser.add_argument("--write-every", type=float, default=10.0, help="seconds between two writer batches")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between two RSS samples")
    parser.add_argument("--start-timeout", type=float, default=600.0, help="seconds to wait for the server")
    parser.add_argument("--server-log", help="file for the server's output")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--perf", type=Path, metavar="FILE",
                        help="also write a table of the performance report here (docs/perf/web_load.json)")
    args = parser.parse_args(argv)
    result = run(args)
    summary = {k: v for k, v in result.items() if k != "rss_samples_mb"}
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    allocator = [f"{name}={value} " for name, value in sorted(os.environ.items()) if name.startswith("MALLOC_")]
    result["command"] = "".join(allocator) + "python -m bench.load_test " + " ".join(
        sys.argv[1:] if argv is None else argv)
    if args.json:
        write_json(args.json, result)
    if args.perf:
        perf_table(args.perf, result)
    return 0 if result["errors"] == 0 else 1


PERF_COLUMNS = {"clients": "clients", "server_threads": "server threads", "duration_s": "seconds",
                "requests": "requests", "errors": "errors", "requests_per_s": "requests/s",
                "latency_ms_p50": "p50 ms", "latency_ms_p99": "p99 ms", "latency_ms_max": "max ms",
                "rss_mb_first_window": "RSS MB, first window", "rss_mb_last_window": "RSS MB, last window"}


def perf_table(path: Path, result: dict) -> None:
    """The result as one row of a performance report table at ``path``."""
    writer = result["writer"]
    write_perf(path, {
        "title": f"Web load: {result['clients']} clients against souyi serve",
        "command": result["command"],
        "machine": machine(),
        "columns": list(PERF_COLUMNS.values()),
        "rows": [[result[key] for key in PERF_COLUMNS]],
        "notes": (f"Index {result['index']}. Each client sends GET /api/search back to back over keep-alive "
                  "(12 Chinese and English questions, modes hybrid/hybrid/dense/lexical, k=10); the load "
                  "generator shares the machine's cores with the server. "
                  + (f"A writer added one document with souyi add every few seconds: {writer['batches']} batches, "
                     f"{writer['failures']} failed." if writer else "No writer.")),
    })


if __name__ == "__main__":
    raise SystemExit(main())
