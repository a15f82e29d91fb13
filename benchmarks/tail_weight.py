"""A blend that gives the text one weight on head items and another on the rest: does validation pick it?

    .venv/bin/python benchmarks/tail_weight.py amazon-beauty runs/beauty-tuned --tag amazon-beauty-tuned-teacher

`TextBlend` adds `w * z(text)` to the teacher's per-user z-scores with one weight for every item. A model that
learns one vector per item knows the rare items least, so the text could deserve more weight there: this script
scores every item i with `z(teacher)_ui + w_i * z(text)_ui`, where `w_i` is `w_head` on the head items
(`evaluate/slices.item_groups`, by training count) and `w_tail` on the others (tail and cold), over a grid of
both, on validation and on the test, with head / tail / cold slices. The grid's diagonal (`w_tail = w_head`)
is `TextBlend`'s own curve. It reports the pair validation NDCG@10 picks, with and without the tail
floor (validation tail NDCG@10 at least the text-only model's), and each pair's test score beside it. The text
side is the teacher folder's own text (`tuned_text_only`), as `benchmarks/text_blend.py` reads it without
`--encoder-tuning-pairs`. Writes `benchmarks/results/tail_weight/<tag or dataset>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DISTILLREC_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))

import numpy as np  # noqa: E402

from distillrec.config import DatasetConfig  # noqa: E402
from distillrec.evaluate.ranking import evaluate  # noqa: E402
from distillrec.evaluate.slices import item_groups, slice_summaries  # noqa: E402
from distillrec.models.precomputed import Precomputed, scores_of  # noqa: E402
from distillrec.models.text_blend import pick_weight, standardise  # noqa: E402
from distillrec.recommend import load  # noqa: E402
from distillrec.stages.teacher import read_teacher_folder, teacher_data, tuned_text_only  # noqa: E402
from distillrec.train.loop import bf16_autocast  # noqa: E402

HEAD_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5)
TAIL_WEIGHTS = (0.2, 0.3, 0.5, 0.75, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("teacher", type=Path, help="a folder written by `distillrec teacher`")
    parser.add_argument("--tag", help="the result's name (default: the dataset)")
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results" / "tail_weight" / f"{args.tag or args.dataset}.json"
    try:
        data = teacher_data(args.teacher, DatasetConfig(source=args.dataset))
        settings, split, seed = read_teacher_folder(args.teacher, data.dataset)
        teacher = load(args.teacher / "model").model
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(str(exc)) from None
    text = tuned_text_only(np.load(args.teacher / "text_embeddings.npy"), split)
    head = item_groups(split.train)["head"]
    pairs = sorted({(h, t) for h in HEAD_WEIGHTS for t in (h, *TAIL_WEIGHTS) if t >= h})
    grid: dict[str, dict] = {f"{h}/{t}": {"w_head": h, "w_tail": t} for h, t in pairs}
    with bf16_autocast(settings.bf16):
        text_tail = slice_summaries(evaluate(text, split.train, split.valid), split.valid, split.train)
        phases = (("valid", split.train, split.valid), ("test", split.test_history(), split.test))
        for phase, history, targets in phases:
            users = targets.active_users()
            scores = [standardise(s) for s in scores_of([teacher, text], users, history)]
            for (h, t), cell in zip(pairs, grid.values(), strict=True):
                weights = np.where(head, np.float32(h), np.float32(t))

                def combine(z_teacher, z_text, weights=weights):
                    return z_teacher + weights * z_text

                evaluation = evaluate(Precomputed(users, scores, combine), history, targets)
                slices = slice_summaries(evaluation, targets, split.train)
                cell[phase] = {
                    "NDCG@10": evaluation.summary["NDCG@10"],
                    **{name: v["NDCG@10"] for name, v in slices.items()},
                }
                print(f"{phase} w_head {h} w_tail {t}: {cell[phase]}", flush=True)
    validation = {
        key: {"NDCG@10": c["valid"]["NDCG@10"], "tail": c["valid"]["tail"]} for key, c in grid.items()
    }
    floor = text_tail["tail"]["NDCG@10"]
    result = {
        "dataset": args.dataset,
        "teacher": str(args.teacher),
        "teacher_seed": seed,
        "text_tail_valid": floor,
        "grid": grid,
        "picked_free": pick_weight(validation),  # pick_weight's rule, over the grid's keys
        "picked_floor": pick_weight(validation, floor),
        "command": f"benchmarks/tail_weight.py {args.dataset} TEACHER"
        + (f" --tag {args.tag}" if args.tag else ""),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"picked {result['picked_free']} (free), {result['picked_floor']} (floor); wrote {out}")


if __name__ == "__main__":
    main()
