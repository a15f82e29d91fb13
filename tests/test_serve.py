"""`distillrec serve`: the HTTP API over a run's KD student, checked against `distillrec.load` and by hand."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from distillrec.recommend import load  # noqa: E402
from distillrec.serve.app import ServeSettings, make_app  # noqa: E402
from distillrec.serve.service import Service, build_engine  # noqa: E402
from distillrec.serve.store import Event, SQLiteStore  # noqa: E402

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(student_dir, tmp_path):
    service = Service(build_engine(student_dir), SQLiteStore(tmp_path / "events.sqlite"))
    with TestClient(make_app(service, ServeSettings(api_key=KEY, open_recommend=True))) as c:
        yield c
    service.store.close()


def top(answer: dict) -> list[str]:
    return [row["item_id"] for row in answer["items"]]


def test_known_users_get_what_the_saved_model_recommends(client, student_dir):
    saved = load(student_dir)
    users = [str(u) for u in saved.catalog.user_ids]
    for user in users:
        answer = client.post("/recommend", json={"user_id": user, "k": 10}).json()
        expected = saved.recommend(user=user, k=10)
        assert top(answer) == [item for item, _ in expected], user
        np.testing.assert_allclose(
            [r["score"] for r in answer["items"]], [s for _, s in expected], rtol=1e-5, atol=1e-5
        )


def test_feedback_is_read_by_the_next_request(client, student_dir):
    saved = load(student_dir)
    user = str(saved.catalog.user_ids[3])
    first = top(client.post("/recommend", json={"user_id": user}).json())
    clicked = [first[0], first[4]]
    for item in clicked:
        assert client.post("/feedback", json={"user_id": user, "item_id": item}, headers=AUTH).json() == {
            "stored": 1
        }
    after = client.post("/recommend", json={"user_id": user}).json()
    assert not set(clicked) & set(top(after))  # seen items are not recommended again
    assert top(after) == [item for item, _ in saved.recommend(user=user, history=clicked, k=10)]
    # impressions are stored, not read as history
    client.post(
        "/feedback", json={"user_id": user, "item_id": top(after)[0], "event": "impression"}, headers=AUTH
    )
    assert top(client.post("/recommend", json={"user_id": user}).json()) == top(after)
    events = client.get(f"/users/{user}", headers=AUTH).json()["events"]
    assert [(e["item_id"], e["event"]) for e in events] == [
        (clicked[0], "click"),
        (clicked[1], "click"),
        (top(after)[0], "impression"),
    ]


def test_a_new_user_is_created_by_feedback_and_histories_follow_timestamps(client, student_dir):
    saved = load(student_dir)
    a, b = (str(i) for i in saved.catalog.item_ids[:2])
    assert client.post("/recommend", json={"user_id": "new-user"}).json()["cold_start"] is True
    batch = [
        {"user_id": "new-user", "item_id": a, "timestamp": 200.0},
        {"user_id": "new-user", "item_id": b, "event": "purchase", "value": 2.5, "timestamp": 100.0},
    ]
    assert client.post("/feedback", json=batch, headers=AUTH).json() == {"stored": 2}
    answer = client.post("/recommend", json={"user_id": "new-user"}).json()
    assert "unknown_user" not in answer and not answer["cold_start"]
    assert top(answer) == [item for item, _ in saved.recommend(history=[b, a], k=10)]  # b is older


def test_feedback_survives_a_restart_and_a_bad_batch_stores_nothing(student_dir, tmp_path):
    engine = build_engine(student_dir)
    store = SQLiteStore(tmp_path / "e.sqlite")
    assert store._rows("PRAGMA journal_mode") == [("wal",)]
    assert store._rows("PRAGMA synchronous") == [(2,)]  # FULL
    first = TestClient(make_app(Service(engine, store), ServeSettings(api_key=KEY, open_recommend=True)))
    item = engine.item_ids[5]
    assert first.post("/feedback", json={"user_id": "u", "item_id": item}, headers=AUTH).status_code == 200
    bad = [{"user_id": "u", "item_id": item}, {"user_id": "u", "item_id": "no-such-item"}]
    response = first.post("/feedback", json=bad, headers=AUTH)
    assert response.status_code == 404 and "no-such-item" in response.json()["message"]
    answer = first.post("/recommend", json={"user_id": "u"}).json()
    store.close()
    again = TestClient(
        make_app(
            Service(engine, SQLiteStore(tmp_path / "e.sqlite")),
            ServeSettings(api_key=KEY, open_recommend=True),
        )
    )
    assert [e["item_id"] for e in again.get("/users/u", headers=AUTH).json()["events"]] == [item]
    assert again.post("/recommend", json={"user_id": "u"}).json() == answer


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("post", "/feedback", {"user_id": "u", "item_id": "1"}),
        ("post", "/items", {"item_id": "x", "title": "t"}),
        ("get", "/explain?user_id=1&item_id=1", None),
        ("get", "/users/1", None),
        ("delete", "/users/1", None),
        ("post", "/admin/reload", {}),
    ],
)
def test_write_and_private_endpoints_need_the_key(client, method, path, body):
    kwargs = {"json": body} if body is not None else {}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = getattr(client, method)(path, headers=headers, **kwargs)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"


def test_recommend_can_need_the_key(student_dir, tmp_path):
    service = Service(build_engine(student_dir), SQLiteStore(tmp_path / "e.sqlite"))
    keyed = TestClient(make_app(service, ServeSettings(api_key=KEY)))  # keyed unless opened
    user = service.engine.saved.catalog.user_ids[0]
    assert keyed.post("/recommend", json={"user_id": user}).status_code == 401
    assert keyed.post("/recommend", json={"user_id": user}, headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    "body,field",
    [
        ({"user_id": "1", "k": 0}, "k"),
        ({"user_id": "1", "k": 5000}, "k"),
        ({"history": "50"}, "history"),
        ({"user_id": "1", "colour": "red"}, "colour"),
        ({}, "give user_id, history, or both"),
        ({"user_id": "x" * 300}, "user_id"),
    ],
)
def test_bad_recommend_requests_are_422_naming_the_field(client, body, field):
    response = client.post("/recommend", json=body)
    assert response.status_code == 422
    assert field in response.json()["message"]


def test_bad_feedback_unknown_ids_and_big_bodies(client):
    bad = client.post("/feedback", json={"user_id": "u", "item_id": "1", "event": "no spaces"}, headers=AUTH)
    assert bad.status_code == 422 and "event" in bad.json()["message"]
    too_many = [{"user_id": "u", "item_id": "1"}] * 1001
    assert client.post("/feedback", json=too_many, headers=AUTH).status_code == 422
    assert client.get("/items/no-such-item/similar").status_code == 404
    assert client.get("/items/no-such-item").status_code == 404
    assert client.get("/users/nobody", headers=AUTH).status_code == 404
    assert (
        client.get("/explain", params={"user_id": "nobody", "item_id": "50"}, headers=AUTH).status_code == 404
    )
    big = client.post("/recommend", content=b"x" * 2_000_000, headers={"content-type": "application/json"})
    assert big.status_code == 413
    chunks = (b"x" * 100_000 for _ in range(20))  # chunked: no Content-Length
    chunked = client.post("/recommend", content=chunks, headers={"content-type": "application/json"})
    assert chunked.status_code == 413 and "over 1000000 bytes" in chunked.json()["message"]


def test_a_posted_item_is_recommendable_at_once_and_kept(client, student_dir, tmp_path):
    engine = client.app.state.service.engine
    known = engine.item_ids[10]
    title, genres = engine.titles[10].split(". Genres: ")
    posted = client.post(
        "/items", json={"item_id": "new-1", "title": title, "genres": genres.replace(", ", "|")}, headers=AUTH
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["title"] == engine.titles[10]  # rendered as the known items were
    assert engine.reads_as[engine.row_of["new-1"]] == 10  # the same text: read as that known item
    assert client.post("/items", json={"item_id": "new-1", "title": "again"}, headers=AUTH).status_code == 409
    everything = client.post("/recommend", json={"history": [known], "k": len(engine.item_ids)}).json()
    assert "new-1" in top(everything)
    # placed at the known item whose text is nearest (the same text here): item 10's vector, so its score
    table = engine.item_vectors()
    np.testing.assert_array_equal(table[engine.row_of["new-1"]], table[10])
    user = engine.user_vectors([np.array([10])])[0]
    score = {r["item_id"]: r["score"] for r in everything["items"]}["new-1"]
    assert score == pytest.approx(float(user @ table[10]), rel=1e-4)
    assert client.get("/items", params={"q": title.split()[0]}).json()["items"]
    assert (
        client.post("/feedback", json={"user_id": "u", "item_id": "new-1"}, headers=AUTH).status_code == 200
    )
    assert "new-1" not in top(client.post("/recommend", json={"user_id": "u", "k": 50}).json())
    # a server started again on the same store has it, in the same row
    store = client.app.state.service.store
    again = Service(build_engine(student_dir), store)
    assert again.engine.row_of["new-1"] == engine.row_of["new-1"]


def test_explain_ranks_as_recommend_and_the_teacher_as_its_own_folder(client, student_dir, serve_run):
    saved = load(student_dir)
    user = str(saved.catalog.user_ids[7])
    answer = client.post("/recommend", json={"user_id": user, "k": 10}).json()
    teacher = load(serve_run / "teacher" / "model")
    teacher_top = [item for item, _ in teacher.recommend(user=user, k=len(saved.catalog.item_ids))]
    for place, item in enumerate(top(answer)[:4], start=1):
        why = client.get("/explain", params={"user_id": user, "item_id": item}, headers=AUTH).json()
        assert why["rank"] == place
        assert len(why["because"]) == 5
        totals = [b["model_similarity"] + b["text_similarity"] for b in why["because"]]
        assert totals == sorted(totals, reverse=True)
        history = set(saved.catalog.history.sequence(saved.catalog.user_ids.tolist().index(user)).tolist())
        assert {saved.catalog.item_ids.tolist().index(b["item_id"]) for b in why["because"]} <= history
        assert why["teacher"]["rank"] == teacher_top.index(item) + 1


def test_erasing_a_user(client, student_dir):
    saved = load(student_dir)
    user = str(saved.catalog.user_ids[2])
    client.post("/feedback", json={"user_id": user, "item_id": str(saved.catalog.item_ids[0])}, headers=AUTH)
    assert client.get(f"/users/{user}", headers=AUTH).json()["known_history"]
    erased = client.delete(f"/users/{user}", headers=AUTH).json()
    assert erased == {"user_id": user, "events_deleted": 1, "known_history_hidden": True}
    assert client.get(f"/users/{user}", headers=AUTH).status_code == 404
    answer = client.post("/recommend", json={"user_id": user}).json()
    assert answer["cold_start"] and answer["unknown_user"]
    assert client.delete(f"/users/{user}", headers=AUTH).status_code == 404


def test_reload_swaps_the_model_without_a_failed_request(client, serve_run):
    import time

    answered: list[tuple[float, int]] = []  # (when, status)
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            status = client.post("/recommend", json={"history": ["50", "172"]}).status_code
            answered.append((time.perf_counter(), status))

    workers = [threading.Thread(target=ask) for _ in range(2)]
    for w in workers:
        w.start()
    time.sleep(0.2)
    start = time.perf_counter()
    swapped = client.post(
        "/admin/reload", json={"model_dir": str(serve_run / "teacher" / "model")}, headers=AUTH
    )
    end = time.perf_counter()
    time.sleep(0.2)
    stop.set()
    for w in workers:
        w.join()
    assert swapped.status_code == 200, swapped.text
    assert swapped.json()["model"] == "LLMEnhancedSASRec"
    assert client.get("/health/ready").json()["model"] == "LLMEnhancedSASRec"
    assert {status for _, status in answered} == {200}
    assert any(start < when < end for when, _ in answered)  # requests were answered during the reload


def test_models_without_vectors_are_served_through_rank(student_dir, serve_run, tmp_path):
    ease = serve_run / "baselines" / "models" / "ease"
    service = Service(build_engine(ease), SQLiteStore(tmp_path / "e.sqlite"))
    c = TestClient(make_app(service, ServeSettings(api_key=KEY, open_recommend=True)))
    saved = load(ease)
    user = str(saved.catalog.user_ids[1])
    assert top(c.post("/recommend", json={"user_id": user}).json()) == [
        i for i, _ in saved.recommend(user=user)
    ]
    assert c.post("/items", json={"item_id": "n", "title": "A film"}, headers=AUTH).status_code == 409
    assert c.get(f"/items/{saved.catalog.item_ids[0]}/similar").status_code == 200  # by text


def test_metrics_count_requests(client):
    client.post("/recommend", json={"history": ["50"]})
    client.post("/recommend", json={"k": 0, "user_id": "1"})
    text = client.get("/metrics").text
    assert 'distillrec_requests_total{method="POST",route="/recommend",status="200"} 1.0' in text
    assert 'distillrec_requests_total{method="POST",route="/recommend",status="422"} 1.0' in text
    assert 'distillrec_request_seconds_count{route="/recommend"} 2.0' in text
    ready = client.get("/health/ready").json()
    assert ready["status"] == "ready" and ready["teacher"] is True and ready["index"] == "exact"


def test_store_keeps_impressions_out_of_histories(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.add_events(
        [
            Event("u", "a", "click", None, 3.0),
            Event("u", "b", "impression", None, 1.0),
            Event("u", "c", "rating", 4.0, 2.0),
        ]
    )
    assert store.history("u") == ["c", "a"]
    assert [e.item_id for e in store.events("u")] == ["b", "c", "a"]
    assert store.erase_user("u") == 3 and store.events("u") == [] and store.erased() == {"u"}


def test_the_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>distillrec</title>" in page.text
    assert json.loads(client.get("/openapi.json").text)["paths"]["/recommend"]


@pytest.mark.slow
def test_no_5xx_under_fuzzing(student_dir, tmp_path):
    """Property-based requests from the OpenAPI schema (schemathesis), with and without the key: never a 5xx."""
    schemathesis = pytest.importorskip("schemathesis")
    import hypothesis

    service = Service(build_engine(student_dir), SQLiteStore(tmp_path / "fuzz.sqlite"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", make_app(service, ServeSettings(api_key=KEY)))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=40, deadline=None, suppress_health_check=list(hypothesis.HealthCheck)
        )
        def never_5xx(case) -> None:
            for headers in ({}, AUTH):
                response = case.call(headers=headers)
                assert response.status_code < 500, (case.method, case.formatted_path, response.text)

        never_5xx()


def test_an_hnsw_index_serves_and_reports_its_recall(student_dir, tmp_path):
    engine = build_engine(student_dir, index="hnsw")
    settings = ServeSettings(api_key=KEY, open_recommend=True)
    c = TestClient(make_app(Service(engine, SQLiteStore(tmp_path / "e.sqlite")), settings))
    ready = c.get("/health/ready").json()
    assert ready["index"] == "hnsw" and 0.9 <= ready["index_recall_at_10"] <= 1.0
    saved = load(student_dir)
    overlaps = []
    for user in saved.catalog.user_ids[:20]:
        served = set(top(c.post("/recommend", json={"user_id": str(user)}).json()))
        overlaps.append(len(served & {i for i, _ in saved.recommend(user=str(user), k=10)}) / 10)
    assert np.mean(overlaps) >= 0.9


def test_a_model_with_a_vector_per_user_masks_feedback_and_forgets_erased_users(serve_run, tmp_path):
    ials = serve_run / "baselines" / "models" / "ials"
    service = Service(build_engine(ials), SQLiteStore(tmp_path / "e.sqlite"))
    c = TestClient(make_app(service, ServeSettings(api_key=KEY, open_recommend=True)))
    saved = load(ials)
    user = str(saved.catalog.user_ids[6])
    first = top(c.post("/recommend", json={"user_id": user}).json())
    assert first == [i for i, _ in saved.recommend(user=user)]
    c.post("/feedback", json=[{"user_id": user, "item_id": i} for i in first[:3]], headers=AUTH)
    after = top(c.post("/recommend", json={"user_id": user}).json())
    assert after == [i for i, _ in saved.recommend(user=user, k=13) if i not in first[:3]][:10]
    c.delete(f"/users/{user}", headers=AUTH)
    c.post("/feedback", json={"user_id": user, "item_id": first[5]}, headers=AUTH)
    erased = c.post("/recommend", json={"user_id": user}).json()
    assert erased["cold_start"] and first[5] not in top(erased)  # the learned vector is not read any more
    stranger = c.post("/recommend", json={"user_id": "nobody", "history": [first[0]]}).json()
    assert stranger["cold_start"] and first[0] not in top(stranger)
