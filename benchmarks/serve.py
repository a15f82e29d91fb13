"""Benchmark: `distillrec serve` under load, and feedback durability across a SIGKILL.

    .venv/bin/python benchmarks/serve.py --dataset ml-1m --tag ml-1m
    .venv/bin/python benchmarks/render.py serve          # the table of BENCHMARKS.md

The server is the command line's own (`distillrec serve`, one process, one torch thread per request) on the
loopback address; the load generator (httpx, asyncio, open loop: request i is sent at t0 + i / rate whether or not
earlier ones were answered, at most `--concurrency` in flight) runs on the same 2 cores. Each rate runs
`--seconds`; 80% of the requests are `/recommend` for a random known user (k=10, full catalogue), 20% are one
`/feedback` event each, which the next `/recommend` of that user reads. Latency is the client's, from the moment
a request was due (so time spent waiting for a free connection or a late send counts) to its answer.
Errors: any answer but 200 and any request that failed or was not sent in time.

Durability: a fresh store, feedback at `--durability-rate` per second, the server killed with SIGKILL after
`--kill-after` seconds and restarted on the same store; every acknowledged event (each carries a unique value) is
looked up: `missing` must be 0.

The model: `--model-dir`, or (default) a SASRec student with the quickstart student's shape (dim 32, one block,
one head, histories of 200) trained `--epochs` epoch(s) on the dataset's leave-one-out split and saved under
`benchmarks/results/serve/<tag>_model` (serving latency depends on the shape and the catalogue, not on how long
it trained). Output: `benchmarks/results/serve/<tag>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import httpx  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "serve"
KEY = "benchmark-key"


def student_folder(dataset: str, out: Path, epochs: int) -> Path:
    from distillrec.artifact import Catalog, save_model
    from distillrec.data.dataset import load_dataset
    from distillrec.data.split import leave_one_out
    from distillrec.students.registry import make_student

    if (out / "manifest.json").exists():
        return out
    data_dir = Path(os.environ.get("DISTILLREC_DATA_DIR", ROOT.parent / "shared" / "datasets"))
    ds = load_dataset(data_dir / dataset)
    split = leave_one_out(ds.interactions)
    student = make_student(
        "sasrec", dim=32, n_layers=1, n_heads=1, max_len=200, max_epochs=epochs, progress=True
    )
    student.fit(split.train)
    catalog = Catalog(ds.user_ids.astype(str), ds.item_ids.astype(str), split.test_history())
    return save_model(student, out, catalog, split.train, {"benchmark": f"serve, {epochs} epoch(s)"})


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "mean_ms": None}
    ms = np.asarray(values) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
    }


async def load(
    url: str, rate: float, seconds: float, users: list[str], items: list[str], concurrency: int, seed: int
) -> dict:
    """The open-loop mixed load of the module docstring at `rate` requests per second."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    kinds = rng.random(n) < 0.8  # True: recommend
    picks_u, picks_i = rng.integers(len(users), size=n), rng.integers(len(items), size=n)
    latencies: dict[str, list[float]] = {"recommend": [], "feedback": []}
    errors: dict[str, int] = {}
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=10, headers={"Authorization": f"Bearer {KEY}"}
    ) as http:

        async def one(i: int, start: float) -> None:
            async with gate:
                kind = "recommend" if kinds[i] else "feedback"
                try:
                    if kinds[i]:
                        response = await http.post("/recommend", json={"user_id": users[picks_u[i]], "k": 10})
                    else:
                        body = {"user_id": users[picks_u[i]], "item_id": items[picks_i[i]]}
                        response = await http.post("/feedback", json=body)
                    if response.status_code != 200:
                        errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
                        return
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    return
                latencies[kind].append(time.perf_counter() - start)

        t0 = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, t0 + i / rate)))  # latency counts from when it was due
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
    answered = len(latencies["recommend"]) + len(latencies["feedback"])
    return {
        "rate": rate,
        "seconds": seconds,
        "sent": n,
        "answered_200": answered,
        "errors": errors,
        "achieved_per_second": answered / wall,
        "recommend": percentiles(latencies["recommend"]),
        "feedback": percentiles(latencies["feedback"]),
    }


async def feedback_until_killed(
    server, rate: float, kill_after: float, users: list[str], items: list[str]
) -> list[int]:
    """Feedback events with unique values at `rate`/s; the server is SIGKILLed after `kill_after` s. Returns
    the values of the acknowledged events."""
    acked: list[int] = []
    async with httpx.AsyncClient(
        base_url=server.url, timeout=5, headers={"Authorization": f"Bearer {KEY}"}
    ) as http:

        async def one(n: int) -> None:
            body = {"user_id": users[n % len(users)], "item_id": items[n % len(items)], "value": float(n)}
            try:
                if (await http.post("/feedback", json=body)).status_code == 200:
                    acked.append(n)
            except httpx.HTTPError:
                pass

        t0, tasks, n = time.perf_counter(), [], 0
        while True:
            now = time.perf_counter() - t0
            if now >= kill_after:
                server.kill()
                break
            tasks.append(asyncio.create_task(one(n)))
            n += 1
            await asyncio.sleep(max(0.0, t0 + n / rate - time.perf_counter()))
        await asyncio.gather(*tasks)
    return acked


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--tag", required=True)
    parser.add_argument(
        "--model-dir", type=Path, help="a model folder (default: a student-shaped SASRec, see above)"
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rates", default="50,200,500")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--durability-rate", type=float, default=200.0)
    parser.add_argument("--kill-after", type=float, default=10.0)
    args = parser.parse_args()

    from distillrec.recommend import load as load_model
    from distillrec.serve.process import ServerProcess
    from distillrec.serve.store import SQLiteStore

    RESULTS.mkdir(parents=True, exist_ok=True)
    model_dir = args.model_dir or student_folder(args.dataset, RESULTS / f"{args.tag}_model", args.epochs)
    saved = load_model(model_dir)
    users = [str(u) for u in saved.catalog.user_ids]
    items = [str(i) for i in saved.catalog.item_ids]
    work = RESULTS / f"{args.tag}_model.work"
    work.mkdir(exist_ok=True)
    for old in work.glob("*.sqlite*"):
        old.unlink()
    result = {
        "command": "benchmarks/serve.py " + " ".join(sys.argv[1:]),
        "dataset": args.dataset,
        "model": type(saved.model).__name__,
        "params": saved.model.n_params(),
        "users": len(users),
        "items": len(items),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "rates": [],
    }
    with ServerProcess(model_dir, work / "load.sqlite", KEY, extra_args=("--no-teacher",)) as server:
        asyncio.run(load(server.url, 50, 10, users, items, args.concurrency, seed=99))  # warm-up
        for rate in (float(r) for r in args.rates.split(",")):
            row = asyncio.run(
                load(server.url, rate, args.seconds, users, items, args.concurrency, seed=int(rate))
            )
            print(json.dumps(row))
            result["rates"].append(row)

    db = work / "durability.sqlite"
    server = ServerProcess(model_dir, db, KEY, extra_args=("--no-teacher",)).start()
    acked = asyncio.run(feedback_until_killed(server, args.durability_rate, args.kill_after, users, items))
    with ServerProcess(model_dir, db, KEY, extra_args=("--no-teacher",)):  # restarts on the same store
        pass
    store = SQLiteStore(db)
    stored = {int(v) for (v,) in store._rows("SELECT value FROM events")}
    store.close()
    result["durability"] = {
        "rate": args.durability_rate,
        "killed_after_s": args.kill_after,
        "acknowledged": len(acked),
        "missing": len(set(acked) - stored),
        "stored_unacknowledged": len(stored - set(acked)),
    }
    print(json.dumps(result["durability"]))
    out = RESULTS / f"{args.tag}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
