"""`distillrec run` end to end on a small slice of MovieLens 100K: files, merged metrics, stage reuse."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from distillrec.config import parse_config
from distillrec.pipeline import run_pipeline


@pytest.fixture(scope="module")
def small_dataset(data_dir, tmp_path_factory):
    """The first 80 users of ml-100k, as a generic-format folder (items.tsv with title and genres)."""
    from distillrec.data.dataset import load_dataset

    ds = load_dataset(data_dir / "ml-100k")
    inter = ds.interactions
    keep = inter.users < 80
    folder = tmp_path_factory.mktemp("ml100k-slice")
    pd.DataFrame({"user_id": ds.user_ids[inter.users[keep]], "item_id": ds.item_ids[inter.items[keep]],
                  "timestamp": inter.timestamps[keep]}).to_csv(folder / "interactions.tsv", sep="\t", index=False)
    items = ds.item_text[["title", "genres"]].assign(item_id=ds.item_ids)[["item_id", "title", "genres"]]
    items.to_csv(folder / "items.tsv", sep="\t", index=False)
    return folder


def config(source, student_dim=8):
    return parse_config({
        "name": "t", "dataset": {"source": str(source), "min_item_interactions": 2},
        "baselines": {"models": ["mostpop", "ease"], "grids": {"ease": [{"l2": 100.0}]}},
        "teacher": {"dim": 16, "max_epochs": 2, "top_k": 10, "adapter_hidden": 16, "max_len": 50},
        "students": [{"name": "sasrec", "params": {"dim": student_dim, "max_epochs": 2, "max_len": 50}, "kd": ["soft"]}],
        "seeds": [0], "progress": False,
    })


def test_run_writes_every_artifact_and_reuses_unchanged_stages(small_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLREC_CACHE_DIR", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    first = run_pipeline(config(small_dataset), runs_root=runs, run_dir=runs / "t-1", log=lambda m: None)
    for name in ("config.yaml", "metrics.json", "metrics.jsonl", "report.html", "run.log",
                 "baselines/metrics.json", "teacher/metrics.json", "teacher/positions_topk_items.npy",
                 "students/sasrec-soft/metrics.json"):
        assert (first / name).exists(), name
    merged = json.loads((first / "metrics.json").read_text())
    kinds = {name: row["kind"] for name, row in merged["models"].items()}
    assert kinds == {"mostpop": "baseline", "ease": "baseline", "text_only": "text_only", "teacher": "teacher",
                     "sasrec-soft (KD)": "student_kd", "sasrec (no KD)": "student_plain"}
    assert merged["models"]["ease"]["test"] == json.loads((first / "baselines/metrics.json").read_text())["ease"]["test"]
    assert 0.0 <= merged["agreement"]["sasrec-soft (KD)"]["top10_overlap_with_teacher"] <= 1.0

    # A second run with only the student changed: baselines and teacher are reused, the student is recomputed.
    messages = []
    second = run_pipeline(config(small_dataset, student_dim=4), runs_root=runs, run_dir=runs / "t-2",
                          log=messages.append)
    assert any("[baselines] reused from t-1" in m for m in messages)
    assert any("[teacher] reused from t-1" in m for m in messages)
    assert any(m.startswith("[students/sasrec-soft] done") for m in messages)
    teacher_1 = json.loads((first / "teacher/metrics.json").read_text())["teacher"]["test"]
    assert json.loads((second / "teacher/metrics.json").read_text())["teacher"]["test"] == teacher_1
    second_merged = json.loads((second / "metrics.json").read_text())
    assert second_merged["models"]["sasrec-soft (KD)"]["params"] < merged["models"]["sasrec-soft (KD)"]["params"]
