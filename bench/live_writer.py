"""A served index under a steady writer: 16 clients search ``souyi serve`` while one document is added every 2 s.

    python -m bench.live_writer --index /tmp/souyi-perf/100k-live --idle 60 --duration 300

Starts ``python -m souyi serve --index INDEX`` (a real server process), then
runs ``--clients`` threads searching it back to back (the requests of
:mod:`bench.load_test`) for ``--idle`` seconds without a writer, and then for
``--duration`` seconds while a writer process adds one new document every
``--every`` seconds (start to start) through the API of ``souyi add``, its
model loaded once: each batch embeds its document, so the writer competes with
the server for the cores as a real one would.  The server's RSS is sampled
every ``--sample-every`` seconds.  INDEX is changed (the documents stay).

Reports errors in both windows, the p99 of the writer window over the idle
p99, the writer's batches (and how long each took), and the server's RSS per
minute of the writer window (median of the samples of each minute; shorter
runs use sixths) with the last over the second.  Results go to
``docs/perf/live_writer.json`` (a table of the performance report).
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench import common, load_test
from indexer import add_documents, load_embedder

COLUMNS = ["passages", "clients", "window", "seconds", "requests", "errors", "p50 ms", "p99 ms", "p99 / idle p99",
           "writer batches", "batch s median", "RSS MB per minute"]


def write_loop(index: str, every: float, seconds: float, outcome: multiprocessing.Queue) -> None:
    """Add one new small document to ``index`` every ``every`` seconds for ``seconds``; put the seconds each
    batch took (and failures) on ``outcome``.  Runs in a process of its own, the model loaded first."""
    manifest = json.loads((Path(index) / "manifest.json").read_text(encoding="utf-8"))
    embedder = load_embedder(manifest["model"]["id"])
    folder = Path(tempfile.mkdtemp(prefix="souyi-live-writer-"))
    took, failures = [], []
    start = time.monotonic()
    number = 0
    while time.monotonic() - start < seconds:
        doc = folder / f"live-{number:05d}.txt"
        doc.write_text(f"实时写入文件{number}：浙江省港口货物吞吐量与软件服务外包的统计，杭州信息产业。\n",
                       encoding="utf-8")
        try:
            took.append(common.timed(lambda path=doc: add_documents([path], index, embedder=embedder))[0])
        except Exception as exc:  # noqa: BLE001 - a failed batch is a result of the run
            failures.append(repr(exc))
        number += 1
        time.sleep(max(0.0, start + number * every - time.monotonic()))
    outcome.put({"took_s": took, "failures": failures})


def per_window(samples: list[tuple[float, int]], seconds: float) -> list[float]:
    """Median RSS (MB) of each minute of a window of ``seconds`` (sixths of a window shorter than 3 minutes)."""
    width = 60.0 if seconds >= 180 else seconds / 6
    out = []
    for i in range(max(1, round(seconds / width))):
        found = load_test.window_median(samples, i * width, (i + 1) * width)
        if found:
            out.append(round(found / 2**20, 1))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = common.parser_for(__doc__)
    parser.add_argument("--index", required=True, help="index directory to serve and add to")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, default=4, help="souyi serve --threads")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of load without the writer first")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load with the writer")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between two writer batches")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between two RSS samples")
    parser.add_argument("--start-timeout", type=float, default=600.0, help="seconds to wait for the server")
    parser.add_argument("--server-log", help="file for the server's output")
    common.add_out(parser, "live_writer")
    args = parser.parse_args(argv)
    server, port = load_test.start_server(args.index, args.threads, args.server_log)
    host = "127.0.0.1"
    outcome: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
    try:
        load_test.wait_healthy(host, port, args.start_timeout, server)
        idle, _, idle_s = load_test.load_window(host, port, args.clients, args.idle, server.pid, args.sample_every)
        writer = multiprocessing.get_context("spawn").Process(
            target=write_loop, args=(args.index, args.every, args.duration, outcome))
        waiting = threading.Thread(target=writer.join, daemon=True)  # joined with the clients
        writer.start()
        busy, samples, busy_s = load_test.load_window(host, port, args.clients, args.duration, server.pid,
                                                      args.sample_every, [waiting])
        written = outcome.get(timeout=600)
    finally:
        server.terminate()
        server.wait(timeout=60)
    idle_sum, busy_sum = load_test.latency_summary(idle, idle_s), load_test.latency_summary(busy, busy_s)
    rss = per_window(samples, busy_s)
    ratio = round(busy_sum["latency_ms_p99"] / idle_sum["latency_ms_p99"], 2)
    passages = json.loads((Path(args.index) / "manifest.json").read_text(encoding="utf-8"))["counts"]["passages"]
    batch_s = round(statistics.median(written["took_s"]), 2) if written["took_s"] else None
    rows = [
        [passages, args.clients, "idle", round(idle_s), idle_sum["requests"], idle_sum["errors"],
         idle_sum["latency_ms_p50"], idle_sum["latency_ms_p99"], 1.0, 0, None, None],
        [passages, args.clients, f"writer every {args.every:g} s", round(busy_s), busy_sum["requests"],
         busy_sum["errors"], busy_sum["latency_ms_p50"], busy_sum["latency_ms_p99"], ratio,
         len(written["took_s"]), batch_s, rss],
    ]
    last_over_second = round(rss[-1] / rss[1], 3) if len(rss) > 1 else None
    for row in rows:
        print(row)
    print(f"RSS last over second window: {last_over_second}; writer failures: {written['failures']}")
    common.write_run_table(
        args.out, "live_writer", argv, "A served index under a steady writer", COLUMNS, rows,
        f"souyi serve --threads {args.threads} as its own process; {args.clients} client threads send "
        "GET /api/search back to back (the requests of bench.load_test); the writer is another process "
        "that embeds and adds one document per batch (add_documents, model loaded once). Server, "
        "clients and writer share the machine's cores. RSS last over second minute: "
        f"{last_over_second}; writer failures: {len(written['failures'])}.",
        series={"rss_samples_mb": [(round(t, 1), round(v / 2**20, 1)) for t, v in samples]})
    return 0 if idle_sum["errors"] == busy_sum["errors"] == 0 and not written["failures"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
