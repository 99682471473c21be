"""The XCom browser's pages over HTTP: content, escaping, headers, limits, search, errors.

Against the real gunicorn proxy and real Redis, with XComs pushed through the real service.
What a real browser does with these pages is in test_ui_browser.py.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time

import httpx
import pytest
import redis

from leoflow_xcom.core import keys, limits
from leoflow_xcom.proxy.ui.respond import CSP
from tests.deployment import Deployment
from tests.fixture_types import ClientFor
from tests.proxy.conftest import Proxy
from tests.proxy.ui_data import (
    EXTRACT_OUTPUT,
    HOSTILE,
    HOSTILE_KEY,
    OLDER_RUN,
    RUN,
    push_ui_data,
)

RUN_PAGE = f"/dags/etl_daily/dagRuns/{RUN}"
ENTRIES = f"{RUN_PAGE}/taskInstances"


@pytest.fixture
def data(http: httpx.Client, client_for: ClientFor) -> httpx.Client:
    push_ui_data(client_for)
    return http


def text_of(page: str) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    inline = re.sub(r"</?(?:code|span|a)\b[^>]*>", "", page)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", inline)).split())


def test_pages_are_html_with_a_strict_policy_and_no_script(data: httpx.Client) -> None:
    for path in ["/", "/dags/etl_daily/dagRuns", RUN_PAGE, f"{ENTRIES}/load/xcomEntries/hostile"]:
        resp = data.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["content-type"] == "text/html; charset=utf-8"
        assert resp.headers["content-security-policy"] == CSP
        assert "frame-ancestors 'none'" in CSP and "script-src" not in CSP  # default-src 'none'
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert re.match(r"app;dur=\d+\.\d$", resp.headers["server-timing"])
        assert "<script" not in resp.text.replace("&lt;script", "")
        assert "http://" not in resp.text and "https://" not in resp.text  # nothing external


def test_index_lists_dags_with_their_runs_newest_first_counts_and_bytes(
    data: httpx.Client,
) -> None:
    page = text_of(data.get("/").text)
    assert "Daily ETL etl_daily" in page and "Process files (mapped) fanout_files" in page
    # etl_daily: 2 runs, 7 XComs; the newer run comes first.
    assert re.search(r"2 runs · 7 XComs · 261\.\d KiB · TTL 2 d", page)
    assert page.index(RUN) < page.index(OLDER_RUN)
    assert re.search(r"1 run · 4 XComs · \d+ B · TTL 7 d", page)


def test_run_page_shows_expiry_schema_and_who_may_read(data: httpx.Client) -> None:
    page = data.get(RUN_PAGE).text
    text = text_of(page)
    # etl_daily's TTL is 2 d: every XCom just pushed expires in 2 days.
    assert text.count("in 2 d") == 6 and "expired" not in text
    # From config/dags/etl_daily.json: transform and load depend on extract, notify on load.
    assert re.search(r"May read: extract itself, transform, load ", text)
    assert re.search(r"May read: load itself, notify ", text)
    assert re.search(r"May read: transform itself, load ", text)
    # extract/output and transform/stats have schemas; load's keys have none.
    assert re.search(r"output \d+ B [\d: -]+UTC in 2 d JSON Schema", text)
    assert re.search(r"hostile [\d.]+ \w?B [\d: -]+UTC in 2 d none", text)
    assert 'href="/dags/etl_daily/dagRuns/~/taskInstances/extract/xcomEntries"' in page


def test_mapped_task_instances_are_grouped(data: httpx.Client) -> None:
    text = text_of(data.get(f"/dags/fanout_files/dagRuns/{RUN}").text)
    assert "process_file mapped \u00d7 3 (0\u20132)" in text  # times sign, en dash
    assert re.search(r"May read: process_file itself, summarize ", text)
    assert re.search(r"May read: list_files itself, process_file ", text)


def test_value_page_shows_the_value_escaped_and_highlighted(data: httpx.Client) -> None:
    page = data.get(f"{ENTRIES}/load/xcomEntries/hostile").text
    assert "<script>" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert json.dumps(HOSTILE, ensure_ascii=False) in text_of(page)  # as pushed, as text
    assert '<span class="k">&#34;note&#34;</span>' in page  # keys and strings coloured
    output = data.get(f"{ENTRIES}/extract/xcomEntries/output").text
    assert '<span class="n">42</span>' in output and "&#34;s3://bucket/etl/part-0.parquet" in output
    assert 'id="schema"' in output and "&#34;^(s3|gs)://&#34;" in output
    assert "raw JSON" in output and str(EXTRACT_OUTPUT["uri"]) in text_of(output)


def test_a_hostile_key_is_text_everywhere_and_its_link_works(data: httpx.Client) -> None:
    run_page = data.get(RUN_PAGE).text
    assert "<img" not in run_page and HOSTILE_KEY in text_of(run_page)
    [href] = re.findall(r'href="([^"]*xcomEntries/%3Cimg[^"]*)"', run_page)
    value = data.get(html.unescape(href))
    assert value.status_code == 200 and "<img" not in value.text
    assert f"XCom {HOSTILE_KEY}" in text_of(value.text)
    assert json.dumps(HOSTILE, ensure_ascii=False) in text_of(value.text)


def test_a_value_over_the_display_cap_is_cut_with_its_size_and_a_link(
    data: httpx.Client,
) -> None:
    resp = data.get(f"{ENTRIES}/load/xcomEntries/big")
    text = text_of(resp.text)
    assert "Showing the first 16.0 KiB of 256.0 KiB (262,144 bytes)" in text
    assert f"({limits.MAX_VALUE_BYTES - limits.UI_VALUE_DISPLAY_BYTES:,} more bytes)" in text
    assert resp.text.count("a") < limits.UI_VALUE_DISPLAY_BYTES + 2_000
    raw = "/api/v2/dags/etl_daily/dagRuns/manual__2026-11-30/taskInstances/load/xcomEntries/big"
    assert f'href="{raw}"' in resp.text
    assert len(data.get(raw).json()["value"]) == limits.MAX_VALUE_BYTES - 2


def test_the_value_page_reads_no_more_than_the_cap_from_redis(
    data: httpx.Client, redis_deployment: Deployment
) -> None:
    seen: list[str] = []
    ready = threading.Event()
    end = "end-of-the-page-read"
    # MONITOR sees one node: the primary holding the run (the only Redis, on standalone).
    node = redis_deployment.primary_for(keys.run_keys("etl_daily", RUN).index).client()

    def watch() -> None:
        with node.monitor() as monitor:  # type: ignore[no-untyped-call]
            ready.set()
            for command in monitor.listen():
                seen.append(command["command"])
                # Not PING: Sentinels ping the primary they watch every second.
                if command["command"] == f"ECHO {end}":
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(5)
    time.sleep(0.2)
    assert data.get(f"{ENTRIES}/load/xcomEntries/big").status_code == 200
    node.echo(end)
    watcher.join(5)
    node.close()
    reads = [c for c in seen if ":v:" in c]
    assert reads and all(c.startswith(("STRLEN ", "GETRANGE ")) for c in reads), reads
    assert any(c.endswith(f" 0 {limits.UI_VALUE_DISPLAY_BYTES - 1}") for c in reads)


def test_search_and_wildcard_listings(data: httpx.Client) -> None:
    search = data.get("/search", params={"q": "process_file", "by": "task"})
    assert search.status_code == 303
    by_task = data.get("/search", params={"q": "process_file", "by": "task"}, follow_redirects=True)
    assert by_task.status_code == 200
    assert str(by_task.url).endswith("/dags/~/dagRuns/~/taskInstances/process_file/xcomEntries")
    assert "3 found" in text_of(by_task.text)
    by_run = data.get("/search", params={"q": OLDER_RUN, "by": "run"}, follow_redirects=True)
    assert "1 found" in text_of(by_run.text)
    across = text_of(data.get("/dags/etl_daily/dagRuns/~/taskInstances/extract/xcomEntries").text)
    assert "2 found" in across
    keyed = data.get(f"{ENTRIES}/~/xcomEntries", params={"xcom_key": "big"}).text
    assert "1 found" in text_of(keyed) and "/taskInstances/load/xcomEntries/big" in keyed


def test_unknown_things_and_bad_parameters_get_a_page_that_says_so(data: httpx.Client) -> None:
    for path, status, words in [
        ("/dags/etl_daily/dagRuns/nope", 404, "No such run"),
        (f"{ENTRIES}/load/xcomEntries/nope", 404, "XCom not found"),
        ("/dags/nope/dagRuns", 404, "No such DAG"),
        ("/dags/etl_daily/dagRuns?offset=-1", 400, "offset='-1': must be at least 0"),
        (f"{ENTRIES}/load/xcomEntries/big?map_index=x", 400, "must be an integer"),
    ]:
        resp = data.get(path)
        assert (resp.status_code, resp.headers["content-security-policy"]) == (status, CSP)
        assert words in text_of(resp.text), path


def test_pages_need_credentials_and_prompt_for_basic(proxy: Proxy, r: redis.Redis) -> None:
    for path in ["/", RUN_PAGE, "/static/ui.css"]:
        resp = httpx.get(proxy.url + path)
        assert resp.status_code == 401
        assert 'Basic realm="leoflow-xcom"' in resp.headers.get_list("www-authenticate")[0]
    bearer = httpx.get(proxy.url + "/", headers={"Authorization": f"Bearer {proxy.token}"})
    assert bearer.status_code == 200


def test_static_files_are_served_by_the_proxy(data: httpx.Client) -> None:
    css = data.get("/static/ui.css")
    assert css.headers["content-type"].startswith("text/css") and "pre.json" in css.text
    assert data.get("/static/favicon.svg").headers["content-type"] == "image/svg+xml"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_pages_answer_only_get(data: httpx.Client, method: str) -> None:
    for path in ["/", "/search?q=x", RUN_PAGE, f"{ENTRIES}/load/xcomEntries/hostile"]:
        resp = data.request(method, path)
        assert (resp.status_code, resp.headers["allow"]) == (405, "GET, HEAD"), path
    assert data.head(RUN_PAGE).status_code == 200
