"""Writing over HTTP against a real ``souyi serve`` process: tokens, uploads, jobs, removal, bounds, names.

One server per module (with a write and a read token and small bounds) on a
copy of the sample index; each test sends real HTTP requests to it.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import time
import urllib.parse
import zipfile
from pathlib import Path

import pytest
from test_web import fetch, running_server

from indexer import add_documents, check_index, list_documents
from indexer.jobs import WORKER_NICE, JobJournal, ServerBusy
from indexer.uploads import Outcome, UploadReport
from souyi.cli_remote import multipart_body

WRITE = "write-token-0123456789abcdef"
READ = "read-token-fedcba9876543210"
MAX_FILES = 5


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def call(base: str, path: str, *, token: str | None = WRITE, method: str = "GET", body: bytes | None = None,
         headers: dict | None = None) -> tuple[int, dict, dict | str]:
    """One request; JSON answers decoded."""
    all_headers = {**(_auth(token) if token else {}), **(headers or {})}
    status, answer_headers, text = fetch_with(base + path, body, method, all_headers)
    try:
        return status, answer_headers, json.loads(text)
    except ValueError:
        return status, answer_headers, text


def fetch_with(url: str, body: bytes | None, method: str, headers: dict) -> tuple[int, dict, str]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, _lower(response.headers), response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, _lower(exc.headers), exc.read().decode("utf-8")


def _lower(headers) -> dict:  # noqa: ANN001 - an http.client.HTTPMessage
    """Header names in lower case (servers may spell them differently)."""
    return {name.lower(): value for name, value in headers.items()}


def multipart(files: list[tuple[str, bytes]], fields: dict[str, str] | None = None) -> tuple[bytes, dict]:
    """The client's multipart body (souyi add --server) and its Content-Type header."""
    body, content_type = multipart_body(files, fields)
    return body, {"Content-Type": content_type}


def upload(base: str, files: list[tuple[str, bytes]], fields: dict | None = None, token: str | None = WRITE):
    body, headers = multipart(files, fields)
    return call(base, "/api/documents", token=token, method="POST", body=body, headers=headers)


def wait(base: str, job: int, timeout: float = 120.0) -> dict:
    """The job once it has ended."""
    deadline = time.monotonic() + timeout
    while True:
        status, _, found = call(base, f"/api/jobs/{job}")
        assert status == 200, found
        if found["state"] in ("done", "failed", "lost"):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


def search(base: str, query: str) -> list[dict]:
    status, _, answer = call(base, "/api/search?" + urllib.parse.urlencode({"q": query, "k": 5}), token=READ)
    assert status == 200, answer
    return answer["hits"]


@pytest.fixture(scope="module")
def server(sample_index, cache_dir, tmp_path_factory):
    """(base URL, index, state folder) of a server with both tokens on a copy of the sample index."""
    root = tmp_path_factory.mktemp("uploads")
    index = root / "index"
    shutil.copytree(sample_index, index)
    (root / "write").write_text(WRITE + "\n")
    (root / "read").write_text(READ)
    env = dict(os.environ, SOUYI_CACHE_DIR=str(cache_dir))
    with running_server(env, root / "serve.log", "--index", str(index), "--write-token-file", str(root / "write"),
                        "--read-token-file", str(root / "read"), "--max-upload-files", str(MAX_FILES),
                        "--max-upload-bytes", str(2 * 1024 * 1024), "--max-upload-chars", "20000") as (base, proc):
        yield base, index, Path(str(index) + ".jobs"), root / "serve.log", proc.pid


def test_write_routes_need_the_write_token(server):
    base, _, _, log, _ = server
    body, headers = multipart([("a.txt", "内容".encode())])
    status, answer_headers, _ = call(base, "/api/documents", token=None, method="POST", body=body, headers=headers)
    assert status == 401 and answer_headers["www-authenticate"].startswith("Bearer")
    assert call(base, "/api/documents", token="wrong-token", method="POST", body=body, headers=headers)[0] == 401
    status, _, answer = call(base, "/api/documents", token=READ, method="POST", body=body, headers=headers)
    assert status == 403 and "write token" in answer["message"]
    assert call(base, "/api/documents?id=a.txt", token=READ, method="DELETE")[0] == 403
    assert call(base, "/api/jobs/1", token=READ)[0] == 403
    basic = base64.b64encode(f"anyone:{WRITE}x".encode()).decode()
    assert call(base, "/api/jobs/1", token=None, headers={"Authorization": f"Basic {basic}"})[0] == 401
    # a token in the URL is refused everywhere, even a right one, and never reaches the log
    for path in (f"/api/search?q=x&token={WRITE}", f"/api/health?access_token={READ}", f"/?api_key={WRITE}"):
        status, _, answer = call(base, path, token=READ, headers={"Accept": "application/json"})
        assert status == 400 and "Authorization header" in answer["message"]
    text = log.read_text(errors="replace")
    assert WRITE not in text and READ not in text


def test_read_token_protects_the_page_and_the_read_api(server):
    base, _, _, _, _ = server
    status, headers, _ = call(base, "/", token=None)
    assert status == 401 and headers["www-authenticate"] == 'Basic realm="souyi", charset="UTF-8"'
    status, headers, _ = call(base, "/api/search?q=%E8%BD%AF%E4%BB%B6", token=None)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert call(base, "/api/search?q=%E8%BD%AF%E4%BB%B6", token="not-the-token")[0] == 401
    basic = base64.b64encode(f"browser-user:{READ}".encode()).decode()
    status, _, page = call(base, "/?q=%E8%BD%AF%E4%BB%B6", token=None, headers={"Authorization": f"Basic {basic}"})
    assert status == 200 and "搜义" in page
    assert call(base, "/static/style.css", token=None, headers={"Authorization": f"Basic {basic}"})[0] == 200
    assert call(base, "/static/style.css", token=None)[0] == 401
    assert call(base, "/api/search?q=%E8%BD%AF%E4%BB%B6", token=WRITE)[0] == 200  # the write token reads too
    status, _, health = call(base, "/api/health", token=None)
    assert status == 200 and health == {"status": "ok"}  # open, but says nothing of the corpus
    status, _, spec = call(base, "/api/openapi.json", token=READ)
    assert {"writeToken", "readToken", "readPassword"} == set(spec["components"]["securitySchemes"])
    assert {"post", "delete", "get"} <= set(spec["paths"]["/api/documents"]) and "/api/jobs/{id}" in spec["paths"]


def test_upload_is_searchable_when_its_job_is_done(server):
    base, index, state, _, _ = server
    chinese = "温州鞋业电子商务平台试点启动，交易额突破十亿元。\n\n平台服务中小企业三千余家。".encode("gb18030")
    english = b"# Harbour report\n\nThe Ningbo harbour pilot moved quokkaberry containers overnight."
    status, headers, job = upload(base, [("uploads/wenzhou.txt", chinese), ("uploads/harbour.md", english)],
                                  {"meta": json.dumps({"year": "2009"}), "meta:uploads/harbour.md": '{"lang": "en"}'})
    assert status == 202 and job["state"] in ("queued", "running") and headers["location"] == f"/api/jobs/{job['id']}"
    done = wait(base, job["id"])
    assert done["state"] == "done", done
    assert {d["name"]: d["outcome"] for d in done["documents"]} == {"uploads/wenzhou.txt": "added",
                                                                    "uploads/harbour.md": "added"}
    assert done["progress"]["passages_done"] == done["progress"]["passages_total"] > 0
    assert done["timings"]["embedding"] is not None and done["generation"] is not None
    # done means searchable: no wait, no restart
    assert search(base, "quokkaberry")[0]["doc_id"] == "uploads/harbour.md"
    assert search(base, "温州鞋业电子商务")[0]["doc_id"] == "uploads/wenzhou.txt"
    listed = {d.name: d for d in list_documents(index)}
    assert listed["uploads/harbour.md"].meta == {"year": "2009", "lang": "en"}
    assert listed["uploads/wenzhou.txt"].source == "upload:uploads/wenzhou.txt"
    status, _, page = call(base, "/api/documents?limit=1000", token=READ)
    assert status == 200 and page["total"] == len(listed)
    assert {"uploads/harbour.md", "uploads/wenzhou.txt"} <= {d["name"] for d in page["documents"]}
    assert list((state / "uploads").iterdir()) == []  # the uploaded bytes are gone
    # the same bytes again: unchanged; new bytes under the same name: replaced
    again = wait(base, upload(base, [("uploads/harbour.md", english)], {"meta": '{"year": "2009", "lang": "en"}'}
                              )[2]["id"])
    assert again["documents"] == [{"name": "uploads/harbour.md", "outcome": "unchanged", "reason": None}]
    changed = wait(base, upload(base, [("uploads/harbour.md", english.replace(b"overnight", b"at dawn"))])[2]["id"])
    assert changed["documents"][0]["outcome"] == "replaced"
    assert check_index(index) == []


def test_json_upload_and_removal(server):
    base, index, _, _, _ = server
    body = json.dumps({"documents": [{"name": "notes/plain", "text": "杭州动漫产业博览会吸引观众五十万人次。",
                                      "meta": {"kind": "note"}}]}).encode()
    status, _, job = call(base, "/api/documents", method="POST", body=body,
                          headers={"Content-Type": "application/json"})
    assert status == 202 and wait(base, job["id"])["state"] == "done"
    assert search(base, "杭州动漫产业博览会")[0]["doc_id"] == "notes/plain"
    status, _, job = call(base, "/api/documents?id=notes/plain&id=no-such-document", method="DELETE")
    failed = wait(base, job["id"])
    assert failed["state"] == "failed" and "no-such-document" in failed["error"]
    assert "notes/plain" in {d.name for d in list_documents(index)}  # nothing removed
    status, _, job = call(base, "/api/documents?id=notes/plain", method="DELETE")
    removed = wait(base, job["id"])
    assert removed["state"] == "done" and removed["documents"] == [
        {"name": "notes/plain", "outcome": "removed", "reason": None}]
    assert all(hit["doc_id"] != "notes/plain" for hit in search(base, "杭州动漫产业博览会"))


def test_bad_documents_are_refused_by_name_and_the_rest_goes_in(server, tmp_path):
    base, index, state, _, _ = server
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        archive.writestr("word/document.xml", b" " * (8 * 1024 * 1024))
    good = "丽水生态旅游信息平台上线。".encode()
    files = [("bomb.docx", bomb.getvalue()), ("program.txt", b"\x7fELF\x00\x00\x01" * 50),
             ("../../escape.txt", good), ("/etc/escape.txt", good), ("nul\x00name.txt", good),
             ]
    status, _, job = upload(base, files)
    assert status == 202
    done = wait(base, job["id"])
    outcomes = {d["name"]: d for d in done["documents"]}
    assert outcomes["bomb.docx"]["outcome"] == "refused" and "bomb" in outcomes["bomb.docx"]["reason"]
    assert outcomes["program.txt"]["outcome"] == "refused" and "binary" in outcomes["program.txt"]["reason"]
    for name in ("../../escape.txt", "/etc/escape.txt"):
        assert outcomes[name]["outcome"] == "refused" and "relative label" in outcomes[name]["reason"]
    assert sum(d["outcome"] == "refused" for d in done["documents"]) == 5
    # names are keys, never paths: nothing was written outside the state folder
    assert not (index.parent / "escape.txt").exists() and not Path("/etc/escape.txt").exists()
    assert list((state / "uploads").iterdir()) == []
    # a non-UTF-8 name (raw bytes in the part header) makes the multipart body unreadable: refused whole, clearly
    raw, raw_headers = multipart([("bad-\udcff-name.txt", good), ("ok/lishui.txt", good)])
    status, _, answer = call(base, "/api/documents", method="POST", body=raw, headers=raw_headers)
    assert status == 400 and "UTF-8" in answer["message"]
    assert "ok/lishui.txt" not in {d.name for d in list_documents(index)}
    long = wait(base, upload(base, [("long.txt", ("长" * 20001).encode())])[2]["id"])
    assert long["documents"][0]["outcome"] == "refused" and "20,000" in long["documents"][0]["reason"]


def test_conflicting_source_is_refused_unless_replaced(server, tmp_path):
    base, index, _, _, _ = server
    local = tmp_path / "local.txt"
    local.write_text("衢州智能制造示范区建设方案。", encoding="utf-8")
    wait(base, upload(base, [("seed.txt", b"placeholder")])[2]["id"])  # the server is idle again
    add_documents([local], index)  # a document read from a file on the server's machine, by `souyi add`
    clash = wait(base, upload(base, [("local.txt", "另一份文件。".encode())])[2]["id"])
    assert clash["documents"][0]["outcome"] == "refused" and "already has a document" in clash["documents"][0]["reason"]
    replaced = wait(base, upload(base, [("local.txt", "另一份文件。".encode())], {"replace": "true"})[2]["id"])
    assert replaced["documents"][0]["outcome"] == "replaced"


def test_bounds(server):
    base, _, _, _, _ = server
    status, _, answer = upload(base, [(f"f{i}.txt", b"x") for i in range(MAX_FILES + 1)])
    assert status == 413 and str(MAX_FILES) in answer["message"]
    status, _, _ = upload(base, [("big.txt", b"a" * (2 * 1024 * 1024 + 1))])
    assert status == 413
    twice = wait(base, upload(base, [("same.txt", "甲".encode()), ("same.txt", "乙".encode()),
                                     ("other.txt", "丙".encode())])[2]["id"])
    assert [d["outcome"] for d in twice["documents"]] == ["refused", "refused", "added"]
    assert "2 documents of this batch" in twice["documents"][0]["reason"]
    assert upload(base, [])[0] == 400
    status, _, _ = call(base, "/api/documents", method="POST", body=b"{not json", headers={
        "Content-Type": "application/json"})
    assert status == 400
    assert call(base, "/api/documents", method="DELETE")[0] == 400
    assert call(base, "/api/jobs/999999")[0] == 404


def test_write_routes_do_not_exist_without_a_write_token(sample_index, cli_env, tmp_path):
    with running_server(cli_env, tmp_path / "serve.log", "--index", str(sample_index)) as (base, _):
        body, headers = multipart([("a.txt", b"x")])
        assert call(base, "/api/documents", method="POST", body=body, headers=headers)[0] == 405
        assert call(base, "/api/jobs/1")[0] == 404
        assert fetch(base + "/api/documents")[0] == 200  # the list is a read route
        spec = json.loads(fetch(base + "/api/openapi.json")[2])
        assert set(spec["paths"]["/api/documents"]) == {"get"} and "securitySchemes" not in spec["components"]


def test_a_full_queue_answers_429_with_retry_after(sample_index, tmp_path):
    from web import create_app

    app = create_app(sample_index, {"SOUYI_WRITE_TOKEN": WRITE, "SOUYI_MAX_QUEUED_JOBS": 1,
                                    "SOUYI_STATE_DIR": tmp_path / "state", "SOUYI_OPEN_AT_START": False})
    jobs = app.extensions["souyi_jobs"]
    try:
        jobs.journal.submit("remove", {"names": ["x"]})  # one job waiting (no worker started to take it)
        body, headers = multipart([("a.txt", "内容".encode())])
        answer = app.test_client().post("/api/documents", data=body, headers={**headers, **_auth(WRITE)})
        assert answer.status_code == 429 and answer.headers["Retry-After"].isdigit()
        assert "waiting" in answer.json["message"] and list((tmp_path / "state" / "uploads").iterdir()) == []
        # a second server on the same state folder is refused: one writer of the queue
        with pytest.raises(ServerBusy, match="another souyi serve"):
            create_app(sample_index, {"SOUYI_WRITE_TOKEN": WRITE, "SOUYI_STATE_DIR": tmp_path / "state",
                                      "SOUYI_OPEN_AT_START": False})
    finally:
        jobs.close()


def test_jobs_run_in_a_lower_priority_worker_process(server):
    base, _, _, _, pid = server
    wait(base, upload(base, [("priority.txt", "嘉兴".encode())])[2]["id"])  # the worker is running by now
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    workers = [child for child in children  # multiprocessing's resource tracker is a child too
               if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]
    niceness = [int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[16]) for child in workers]
    assert niceness == [WORKER_NICE]  # one worker, and searches in the server come first


def test_journal_after_a_stop_reports_unfinished_jobs_lost_and_committed_ones_done(tmp_path):
    journal = JobJournal(tmp_path)
    queued, running, committed = (journal.submit("remove", {"names": [n]}) for n in "abc")
    assert journal.claim_next()[0] == queued  # oldest first
    assert journal.claim_next()[0] == running
    journal.claim_next()
    journal.committed(committed, UploadReport(5, (Outcome("c", "removed"),)))
    assert journal.get(committed)["state"] == "running"  # not done before the server has loaded generation 5
    journal.finish(queued, "done")
    fourth = journal.submit("remove", {"names": ["d"]})
    journal.recover()
    states = {job: journal.get(job)["state"] for job in (queued, running, committed, fourth)}
    assert states == {queued: "done", running: "lost", committed: "done", fourth: "lost"}
    assert "send the documents again" in journal.get(running)["error"]
    assert journal.get(committed)["documents"] == [{"name": "c", "outcome": "removed", "reason": None}]
