"""Feeding a served index over HTTP: how soon an upload is searchable, searches during upload jobs, RSS over commits.

    python -m bench.uploads --index /tmp/souyi-perf/10k-uploads

Starts ``python -m souyi serve --index INDEX --write-token-file F`` (a real
server process with its worker) and measures, in this order:

1. *Speed*: ``--speed-runs`` times, one synthetic report of about 50
   passages is uploaded (``POST /api/documents``) and a lexical search for a
   word only it holds is repeated until the report is found: the seconds from
   the POST to the first hit, the job's own embedding time, and the difference
   (what a user waits beyond embedding).
2. *Searches during jobs*: ``--clients`` threads search back to back (the
   requests of :mod:`bench.load_test`) for ``--idle`` seconds, then for
   ``--during`` seconds while upload jobs of one small document each are sent
   one after the other (each waited for before the next): errors, p50/p99, the
   p99 during the jobs over the idle p99, and how many jobs ran.
3. *RSS over commits*: ``--commits`` more one-document jobs one after the other,
   no clients; the server's RSS (and its worker's) after each: the RSS after
   commit 10 and after the last, and their ratio.

INDEX is changed (the uploaded documents stay).  Results go to
``docs/perf/uploads.json`` (a table of the performance report).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from bench import common, load_test
from souyi.cli_remote import multipart_body

COLUMNS = ["passages", "measure", "value", "unit", "target", "met"]
CITIES = ("杭州", "宁波", "温州", "嘉兴", "湖州", "绍兴", "金华", "衢州", "舟山", "台州", "丽水")


class Client:
    """The write routes of one server, with its token."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base + path, body, headers, method=method)
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read())

    def upload(self, name: str, text: str) -> dict:
        """One document as one multipart upload; the job as the server answered it."""
        return self.call("POST", "/api/documents", *multipart_body([(name, text.encode("utf-8"))]))

    def finished(self, job: int, timeout: float = 600.0) -> dict:
        """The job once it has ended (raises if it did not end well)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.call("GET", f"/api/jobs/{job}")
            if found["state"] == "done":
                return found
            if found["state"] in ("failed", "lost") or time.monotonic() > deadline:
                raise RuntimeError(f"job {job}: {found}")
            time.sleep(0.02)

    def found(self, word: str, name: str) -> bool:
        """Whether a lexical search for ``word`` finds the document ``name`` first."""
        query = urllib.parse.urlencode({"q": word, "mode": "lexical", "k": 1})
        hits = self.call("GET", f"/api/search?{query}")["hits"]
        return bool(hits) and hits[0]["doc_id"] == name


def report_text(number: int, marker: str, paragraphs: int = 55) -> str:
    """A synthetic report of about 50 passages (two sentences a paragraph) holding ``marker`` once."""
    lines = [f"# 第{number}号产业发展报告\n"]
    for i in range(paragraphs):
        city = CITIES[(number + i) % len(CITIES)]
        lines.append(f"第{i + 1}节：{city}软件和信息服务业收入增长{(i * 7 + number) % 30 + 3}%，重点企业{i + 12}家。"
                     f"港口货物吞吐量与电子商务交易额继续提高，从业人员达到{(i + 3) * 1000 + number}人。")
    lines.insert(paragraphs // 2, f"本报告编号{marker}。")
    return "\n\n".join(lines)


def marker_word(number: int) -> str:
    """A Latin word no other document holds (BM25 finds it as a whole token)."""
    return f"upmark{number:04d}x"


def measure_speed(client: Client, runs: int) -> list[dict]:
    """Upload ``runs`` reports, each searched for until found: seconds to visible, embedding, passages."""
    out = []
    for run in range(runs):
        marker, name = marker_word(run), f"bench-uploads/report-{run:03d}.md"
        started = time.perf_counter()
        job = client.upload(name, report_text(run, marker))["id"]
        while not client.found(marker, name):
            time.sleep(0.01)
        visible = time.perf_counter() - started
        done = client.finished(job)
        out.append({"visible_s": visible, "embedding_s": done["timings"]["embedding"],
                    "passages": done["progress"]["passages_total"]})
    return out


def small_jobs(client: Client, count: int, first: int, after_each=None) -> list[float]:  # noqa: ANN001
    """``count`` one-document jobs one after the other (``after_each(i)`` after each): seconds each took."""
    took = []
    for i in range(first, first + count):
        started = time.perf_counter()
        client.finished(client.upload(f"bench-uploads/small-{i:05d}.txt",
                                      f"上传测试文档{i}：{CITIES[i % len(CITIES)]}数字经济与软件服务外包。")["id"])
        took.append(time.perf_counter() - started)
        if after_each is not None:
            after_each(i - first + 1)
    return took


def worker_pid(server_pid: int) -> int | None:
    """The server's indexing worker process (a multiprocessing child), if it runs."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return next((int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()), None)


def main(argv: list[str] | None = None) -> int:
    parser = common.parser_for(__doc__)
    parser.add_argument("--index", required=True, help="index directory to serve and upload to")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, default=4, help="souyi serve --threads")
    parser.add_argument("--speed-runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of searches without jobs")
    parser.add_argument("--during", type=float, default=60.0,
                        help="seconds of searches while upload jobs run back to back (at least 20 jobs: the target)")
    parser.add_argument("--commits", type=int, default=100, help="jobs of the RSS measurement")
    parser.add_argument("--start-timeout", type=float, default=600.0)
    parser.add_argument("--server-log", help="file for the server's output")
    common.add_out(parser, "uploads")
    args = parser.parse_args(argv)
    token_file = Path(tempfile.mkdtemp(prefix="souyi-bench-uploads-")) / "token"
    token_file.write_text(uuid.uuid4().hex)
    server, port = load_test.start_server(args.index, args.threads, args.server_log,
                                          ["--write-token-file", str(token_file)])
    host = "127.0.0.1"
    client = Client(f"http://{host}:{port}", token_file.read_text())
    try:
        load_test.wait_healthy(host, port, args.start_timeout, server)
        small_jobs(client, 1, 0)  # the worker has loaded its models: every later job is a steady one
        speed = measure_speed(client, args.speed_runs)
        idle, _, idle_s = load_test.load_window(host, port, args.clients, args.idle, 0, 1.0)
        took: list[float] = []
        stop_at = time.monotonic() + args.during  # the sender stops with the window (its last job may end after)
        sender = threading.Thread(target=_send_until, args=(client, stop_at, took), daemon=True)
        busy, _, busy_s = load_test.load_window(host, port, args.clients, args.during, 0, 1.0, [sender])
        rss: list[tuple[int, int, int]] = []
        small_jobs(client, args.commits, 100_000, lambda n: rss.append(
            (n, common.rss_bytes(server.pid), common.rss_bytes(worker_pid(server.pid) or server.pid))))
        passages = client.call("GET", "/api/health")["passages"]
    finally:
        server.terminate()
        server.wait(timeout=60)
    return _report(args, argv, passages, speed, idle, idle_s, busy, busy_s, took, rss)


def _send_until(client: Client, stop_at: float, took: list[float]) -> None:
    """One-document upload jobs one after the other until ``stop_at`` (monotonic): the seconds each took."""
    number = 1
    while time.monotonic() < stop_at:
        took.extend(small_jobs(client, 1, number))
        number += 1


def _report(args, argv, passages, speed, idle, idle_s, busy, busy_s, took, rss) -> int:  # noqa: ANN001, PLR0913
    idle_sum, busy_sum = load_test.latency_summary(idle, idle_s), load_test.latency_summary(busy, busy_s)
    beyond = [run["visible_s"] - run["embedding_s"] for run in speed]
    ratio = round(busy_sum["latency_ms_p99"] / idle_sum["latency_ms_p99"], 2)
    tenth = next(v for n, v, _ in rss if n == min(10, len(rss)))
    last = rss[-1][1]
    growth = round(last / tenth, 3)

    def row(measure, value, unit, target=None, met=None):  # noqa: ANN001, ANN202
        return [passages, measure, value, unit, target, None if met is None else ("yes" if met else "no")]

    rows = [
        row("upload a ~50-passage report: passages", statistics.median(r["passages"] for r in speed), ""),
        row("upload to searchable, median", round(statistics.median(r["visible_s"] for r in speed), 2), "s"),
        row("  of which the job's embedding, median", round(statistics.median(r["embedding_s"] for r in speed), 2),
            "s"),
        row("searchable beyond embedding, median", round(statistics.median(beyond), 2), "s", "≤ 1 s",
            statistics.median(beyond) <= 1),
        row("searchable beyond embedding, worst", round(max(beyond), 2), "s", "≤ 1 s", max(beyond) <= 1),
        row(f"{args.clients} clients, idle: requests / errors", f"{idle_sum['requests']} / {idle_sum['errors']}", "",
            "0 errors", idle_sum["errors"] == 0),
        row("  idle p50 / p99", f"{idle_sum['latency_ms_p50']} / {idle_sum['latency_ms_p99']}", "ms"),
        row("upload jobs run during the searches", len(took), "jobs", "≥ 20", len(took) >= 20),
        row(f"{args.clients} clients during the jobs: requests / errors",
            f"{busy_sum['requests']} / {busy_sum['errors']}", "", "0 errors", busy_sum["errors"] == 0),
        row("  during jobs p50 / p99", f"{busy_sum['latency_ms_p50']} / {busy_sum['latency_ms_p99']}", "ms"),
        row("  p99 during jobs / idle p99", ratio, "×", "≤ 3", ratio <= 3),
        row("  job time (upload to done) during searches, median", round(statistics.median(took), 2), "s"),
        row(f"server RSS after commit {min(10, len(rss))}", round(tenth / 2**20), "MB"),
        row(f"server RSS after commit {len(rss)}", round(last / 2**20), "MB"),
        row("  ratio", growth, "×", "≤ 1.10", growth <= 1.10),
        row(f"worker RSS after commit {len(rss)}", round(rss[-1][2] / 2**20), "MB"),
    ]
    for line in rows:
        print(line)
    common.write_run_table(
        args.out, "uploads", argv, "Feeding a served index over HTTP", COLUMNS, rows,
        f"souyi serve --threads {args.threads} --write-token-file F as its own process, its indexing "
        "worker a child process at nice 10; clients are threads of the bench process sending GET "
        "/api/search back to back (bench.load_test's requests). Each job is one multipart upload of one "
        "document, waited for (state done) before the next. Server, worker and clients share the cores.",
        series={"rss_mb_by_commit": [(n, round(v / 2**20, 1), round(w / 2**20, 1)) for n, v, w in rss]})
    return 0 if idle_sum["errors"] == busy_sum["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
