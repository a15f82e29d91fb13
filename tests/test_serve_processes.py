"""`distillrec serve` as users run it: the command line's server in child processes (SIGKILL, two processes on
one PostgreSQL store) and the web page in a real browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402

from distillrec.recommend import load  # noqa: E402
from distillrec.serve.process import ServerProcess  # noqa: E402

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def test_the_command_line_server_keeps_every_acknowledged_event_across_sigkill(student_dir, tmp_path):
    """`distillrec serve` in a child process: feedback is posted until the server is killed with SIGKILL
    mid-load; every event it acknowledged is in the store a restarted server reads."""
    db = tmp_path / "events.sqlite"
    items = load(student_dir).catalog.item_ids.tolist()
    acked: list[str] = []
    server = ServerProcess(student_dir, db, KEY).start()
    try:
        assert httpx.post(server.url + "/feedback", json={"user_id": "x", "item_id": "1"}).status_code == 401
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as http:
            for n in range(10_000):
                if n == 150:
                    killer = threading.Timer(0.01, server.kill)
                    killer.start()
                try:
                    response = http.post(
                        "/feedback", json={"user_id": f"u{n % 7}", "item_id": items[n % len(items)]}
                    )
                except httpx.HTTPError:
                    break  # the server is gone
                if response.status_code == 200:
                    acked.append((f"u{n % 7}", items[n % len(items)]))
    finally:
        server.kill()
    assert len(acked) >= 150
    with ServerProcess(student_dir, db, KEY) as again:
        stored = []
        for u in range(7):
            events = httpx.get(f"{again.url}/users/u{u}", headers=AUTH).json()["events"]
            stored += [(f"u{u}", e["item_id"]) for e in events]
    assert not Counter(acked) - Counter(stored)  # no acknowledged event lost
    assert len(stored) <= len(acked) + 1  # one sent as the server died may be stored unacknowledged


def test_the_web_page_in_a_real_browser(student_dir, tmp_path):
    """Headless Chromium: load a known user, ask why, click an item and watch the list change."""
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on this machine (`make browser` installs Debian's)")
    saved = load(student_dir)
    user = str(saved.catalog.user_ids[4])
    with ServerProcess(student_dir, tmp_path / "e.sqlite", KEY) as server, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"{server.url}/#key={KEY}&user={user}")
        page.wait_for_selector("#recs li")
        titles = page.locator("#recs li .title").all_text_contents()
        expected = [item for item, _ in saved.recommend(user=user, k=10)]
        engine_titles = {
            str(i): t for i, t in zip(saved.catalog.item_ids, teacher_titles(student_dir), strict=True)
        }
        assert titles == [engine_titles[i] for i in expected]
        page.locator("#recs li .explain").first.click()
        page.wait_for_selector("#recs li .why")
        assert page.locator("#recs li .why").first.text_content().startswith("Rank 1.")
        page.locator("#recs li .click").first.click()
        page.wait_for_function(
            f"document.querySelector('#recs li .title').textContent !== {json.dumps(titles[0])}"
        )
        after = page.locator("#recs li .title").all_text_contents()
        assert titles[0] not in after
        assert after == [engine_titles[i] for i, _ in saved.recommend(user=user, history=[expected[0]], k=10)]
        latest = f"document.querySelector('#history li').textContent === {json.dumps(titles[0])}"
        page.wait_for_function(latest)  # the clicked item heads the history panel
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert image.shape[0] >= 800 and image.shape[1] == 1200
    assert image.std() > 20  # not a blank page
    assert (image < 80).mean() > 0.02  # the dark header and text are drawn


def teacher_titles(model_dir):
    return (model_dir.parent.parent.parent / "teacher" / "item_texts.txt").read_text().splitlines()


# ------------------------------------------------------------------------------- PostgreSQL, several servers


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="module")
def postgres_url():
    """A real PostgreSQL server started in a temporary folder (unix socket only), stopped after the module."""
    pytest.importorskip("psycopg")
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (`make postgres` installs Debian's postgresql)")
    # not under pytest's own temporary folder, which only its user may enter
    root = Path(tempfile.mkdtemp(prefix="distillrec-pg-"))
    data, socket = root / "data", root / "socket"
    socket.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        shutil.chown(socket, "postgres")
    port = str(50000 + os.getpid() % 10000)
    subprocess.run(
        [*as_user, bin_dir / "initdb", "-D", data, "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    options = f"-k {socket} -p {port} -c listen_addresses=''"
    subprocess.run(
        [*as_user, bin_dir / "pg_ctl", "-D", data, "-o", options, "-w", "-l", root / "log", "start"],
        check=True,
        capture_output=True,
    )
    yield f"postgresql://postgres@/postgres?host={socket}&port={port}"
    subprocess.run([*as_user, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def _empty_postgres(url: str):
    from distillrec.serve.store import open_store

    store = open_store(url)
    with store._transaction() as db:
        db.execute("DROP TABLE IF EXISTS events, items, erased")
    store.close()
    return open_store(url)  # tables made again


def test_postgres_store_answers_as_the_sqlite_store(postgres_url, tmp_path):
    from distillrec.serve.store import DuplicateItem, Event, PostedItem, SQLiteStore

    results = []
    for store in (SQLiteStore(tmp_path / "s.sqlite"), _empty_postgres(postgres_url)):
        store.add_events(
            [
                Event("u", "a", "click", None, 3.0),
                Event("u", "b", "impression", None, 1.0),
                Event("v", "c", "rating", 4.5, 2.0),
            ]
        )
        store.add_item(PostedItem("n1", {"title": "A new film"}, np.arange(4, dtype=np.float32)))
        store.add_item(PostedItem("n2", {"title": "Another"}, np.ones(4, dtype=np.float32)))
        with pytest.raises(DuplicateItem):
            store.add_item(PostedItem("n1", {"title": "again"}, np.zeros(4, dtype=np.float32)))
        erased = store.erase_user("v")
        posted = [(i.item_id, i.fields, i.text_vector.tolist()) for i in store.items()]
        results.append(
            (store.history("u"), [e.event for e in store.events("u")], erased, store.erased(), posted)
        )
        results.append([i.item_id for i in store.items(["n2"])] + store.item_ids())
        store.close()
    assert results[0] == results[2] and results[1] == results[3]
    assert results[0][:4] == (["a"], ["impression", "click"], 1, {"v"}) and results[1] == ["n2", "n1", "n2"]


def test_two_server_processes_share_one_postgres_store(postgres_url, student_dir, tmp_path):
    """Feedback written through one server is read by the other's next request; a posted item reaches the other
    within a second; an erasure too."""
    import time

    _empty_postgres(postgres_url).close()
    saved = load(student_dir)
    user, item = str(saved.catalog.user_ids[9]), str(saved.catalog.item_ids[3])
    first = ServerProcess(student_dir, postgres_url, KEY, log=tmp_path / "a.log")
    second = ServerProcess(student_dir, postgres_url, KEY, log=tmp_path / "b.log")
    with first, second:
        a, b = (httpx.Client(base_url=s.url, headers=AUTH, timeout=30) for s in (first, second))
        assert a.get("/health/ready").json()["store"].startswith("PostgresStore(postgresql://postgres@/")
        assert a.post("/feedback", json={"user_id": user, "item_id": item}).json() == {"stored": 1}
        answer = b.post("/recommend", json={"user_id": user}).json()
        assert [r["item_id"] for r in answer["items"]] == [
            i for i, _ in saved.recommend(user=user, history=[item])
        ]
        assert a.post("/items", json={"item_id": "shared-new", "title": "A new film"}).status_code == 201
        time.sleep(1.2)
        assert b.get("/items/shared-new").json()["posted"] is True
        assert b.post("/items", json={"item_id": "shared-new", "title": "again"}).status_code == 409
        assert b.delete(f"/users/{user}").status_code == 200
        time.sleep(1.2)
        assert a.get(f"/users/{user}").status_code == 404
