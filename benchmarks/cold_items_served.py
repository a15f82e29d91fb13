"""Benchmark: a served student's cold items, posted by their text (`POST /items`), against its own vectors.

    .venv/bin/python benchmarks/cold_items_served.py configs/amazon-beauty.yaml --tag amazon-beauty
    .venv/bin/python benchmarks/render.py cold-served      # the table of BENCHMARKS.md

The data and split of the config (the same as its teacher's); a student of the config's first student shape
trained without KD (validation early stopping, checkpointed under `benchmarks/results/cold_served/<tag>_work`, so
an interrupted run resumes); the items' texts encoded with the config's teacher encoder (the content-addressed
cache). Cold items are the items without a training interaction. As a server would, every cold item is placed by
its text (`serve/placement.py`: at the vector of the trained item whose text is nearest) in place of the vector
training left it, and
the users whose test item is cold are ranked over the full catalogue (their history excluded, ties against the
target). Reported beside: a ridge map from text to item vectors, the student as trained (cold items keep their trained vectors, which full-softmax
training only ever pushed down), the text-only model, and all test users under each table (does posting the cold
items cost the others?). Output: `benchmarks/results/cold_served/<tag>.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from new_items import metrics, target_rank  # the same measures as for held-out items

from distillrec.config import load_config
from distillrec.evaluate.ranking import evaluate
from distillrec.models.text_similarity import TextSimilarity
from distillrec.serve.placement import NearestPlacement, RidgePlacement
from distillrec.stages.data import prepare_data
from distillrec.stages.teacher import item_texts
from distillrec.students.registry import make_student
from distillrec.teachers.cache import EmbeddingCache
from distillrec.teachers.text_encoder import TextEncoder

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "cold_served"


class _Table:
    """A fitted student's user vectors scored against a replacement item table (what a server would hold)."""

    def __init__(self, student, table: np.ndarray) -> None:
        self.student, self.table = student, table

    def score(self, users: np.ndarray, history) -> np.ndarray:
        return self.student.encode(users, history) @ self.table.T


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=3)
    args = parser.parse_args()

    config = load_config(args.config)
    data = prepare_data(config.dataset, config.split)
    split = data.split
    print(data.summary(), flush=True)
    texts, template = item_texts(data.dataset, config.teacher.template)
    encoder = TextEncoder(config.teacher.encoder, bf16=config.teacher.encoder_bf16)
    text = EmbeddingCache().encode(encoder, texts, template=template.key)  # (n_items, d_text)

    shape = config.students[0]
    work = RESULTS / f"{args.tag}_work"
    params = {**shape.params, "max_epochs": args.max_epochs, "patience": args.patience, "progress": True}
    student = make_student(shape.name, **params)
    student.fit(split.train, split.valid, checkpoint_dir=work / "checkpoint")
    table = student.item_embeddings()  # (n_items, dim)

    counts = split.train.item_counts()
    cold = counts == 0
    served, ridge = table.copy(), table.copy()
    served[cold] = NearestPlacement().fit(text[~cold], table[~cold]).place(text[cold])  # as the server does
    ridge[cold] = RidgePlacement().fit(text[~cold], table[~cold]).place(text[cold])

    history = split.test_history()
    users = np.unique(split.test.users)
    targets = np.array([split.test.sequence(u)[0] for u in users])
    is_cold = cold[targets]
    cold_users, cold_targets = users[is_cold], targets[is_cold]
    vectors = student.encode(cold_users, history)  # (n_cold_users, dim)
    text_scores = TextSimilarity(text).fit(split.train).score(cold_users, history)

    tables = {
        "student as trained": table,
        "student, cold items posted by text (served)": served,
        "student, cold items placed by a ridge map": ridge,
    }
    ranks: dict[str, list[int]] = {name: [] for name in tables} | {"text only": []}
    for i, (user, target) in enumerate(zip(cold_users, cold_targets, strict=True)):
        seen = history.sequence(user)
        for name, items in tables.items():
            ranks[name].append(target_rank(items @ vectors[i], seen, target))
        ranks["text only"].append(target_rank(text_scores[i], seen, target))
    every = {
        name: evaluate(_Table(student, items), history, split.test, ks=(10,)).summary
        for name, items in tables.items()
    }
    result = {
        "command": "benchmarks/cold_items_served.py " + " ".join(sys.argv[1:]),
        "dataset": data.dataset.name,
        "student": {"name": shape.name, **{k: v for k, v in params.items() if k != "progress"}},
        "best_epoch": student.fit_result_.best_epoch,
        "cold_items": int(cold.sum()),
        "users": int(len(users)),
        "cold_users": int(len(cold_users)),
        "cold": {name: metrics(np.array(r)) for name, r in ranks.items()},
        "all_users": every,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.tag}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("cold", "all_users")}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
