"""The teacher of a folder with its scores blended with the text-only model's (`TextBlend`), on the test.

    .venv/bin/python benchmarks/text_blend.py amazon-beauty runs/amazon-beauty-compress-<time>/teacher
    .venv/bin/python benchmarks/render.py text-blend

The trained teacher is read from the folder's `model/` (nothing is trained); the text-only model is the one the
teacher stage tunes (`tuned_text_only`: centred or not, picked on validation). The blend adds the two models'
per-user z-scores, `z(teacher) + w * z(text)`, with w picked on validation NDCG@10 twice from the same validation
scores: among every weight (`free`), and among the weights whose validation tail NDCG@10 is at least the text
model's (`tail floor`, the default). The cold-start fallback (`ColdStartFallback`, its shift picked on
validation) is then put over the floored blend, so cold items are ranked too. Every row is tested once, in full
ranking, with head / tail / cold slices, and paired against the teacher over the test users (t-test and Wilcoxon
on per-user NDCG@10); every weight's and every shift's test score is kept beside (only the validation pick is the
method's result). The row `blend_drift` is the tail floor's pick again with every validation user weighted so the
validation targets have the popularity mix expected of the later test targets (`evaluate/drift.py`).
With `--encoder-tuning-pairs N` the text side reads the vectors of MiniLM tuned on N co-occurring item pairs of
the training histories (`teachers/tuned_encoder.py`, as the teacher option `encoder_tuning_pairs` tunes it; kept
under `--encoder-out`), while the teacher stays as it was trained; the stock text-only model is then kept as the
row `text_only_stock`, the reference of the tail goal.
With `--baseline DIR` (a model folder that `distillrec baselines` saved, e.g. `<out>/models/sasrec`) the saved
baseline is tested again on the same test users (its test NDCG@10 must equal the one its `metrics.json` holds)
and every row is also paired against it (`vs_baseline`): the goal "the teacher >= 1.15x the tuned SASRec" as a
paired test, not only a ratio of means.
Writes `benchmarks/results/text_blend/<dataset>.json` (`--tag` for another name), with the teacher's seed; the
same command over teachers of other seeds, tagged `<tag>-seed<N>`, is summarised over the seeds by render.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DISTILLREC_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))

import numpy as np  # noqa: E402

from distillrec.config import DatasetConfig  # noqa: E402
from distillrec.evaluate.ranking import Evaluation, evaluate  # noqa: E402
from distillrec.evaluate.significance import paired_test  # noqa: E402
from distillrec.evaluate.slices import slice_summaries  # noqa: E402
from distillrec.models.cold_fallback import ColdStartFallback  # noqa: E402
from distillrec.models.text_blend import TextBlend, pick_weight  # noqa: E402
from distillrec.recommend import load  # noqa: E402
from distillrec.results import read_results  # noqa: E402
from distillrec.stages.teacher import (  # noqa: E402
    TUNED_ENCODER,
    encode_items,
    read_teacher_folder,
    teacher_data,
    tuned_text_only,
)
from distillrec.teachers.tuned_encoder import read_tuning  # noqa: E402
from distillrec.train.loop import bf16_autocast  # noqa: E402


def baseline_row(model, folder: Path, test_history, split) -> tuple[dict, np.ndarray]:
    """The saved baseline `model` of `folder` tested again: its row (test NDCG@10 and slices, and its validation
    NDCG@10 from the `metrics.json` of the baselines run that saved it: a model refit for the test has seen the
    validation items) and its per-user test NDCG@10 for the paired tests. Raises SystemExit when the test score
    differs from the recorded one: then the folder is not the model that run tested, or the split is not the
    same."""
    metrics = folder.parent.parent / "metrics.json"
    if not metrics.exists():
        raise SystemExit(f"{folder}: no {metrics}; pass a folder that `distillrec baselines` saved")
    rows = read_results(metrics)
    name = folder.name
    if name not in rows:
        raise SystemExit(f"{metrics}: no model {name!r} (it has {sorted(rows)})")
    recorded = rows[name]
    evaluation = evaluate(model, test_history, split.test)
    test = evaluation.summary["NDCG@10"]
    if abs(test - recorded.test["NDCG@10"]) > 1e-6:
        raise SystemExit(
            f"{folder}: test NDCG@10 {test:.6f} here, {recorded.test['NDCG@10']:.6f} in {metrics}: "
            "not the model or the split that run tested"
        )
    row = {
        "name": name,
        "valid": {"NDCG@10": recorded.valid["NDCG@10"]},
        "test": evaluation.summary,
        "slices": slice_summaries(evaluation, split.test, split.train),
    }
    return row, evaluation.per_user["NDCG@10"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("teacher", type=Path, help="a folder written by `distillrec teacher`")
    parser.add_argument("--user-fraction", type=float, default=1.0, help="as the teacher was built with")
    parser.add_argument("--tag", help="the result's name (default: the dataset)")
    parser.add_argument(
        "--encoder-tuning-pairs",
        type=int,
        default=0,
        help="blend with the text of an encoder tuned on this many co-occurring item pairs (0: the teacher's text)",
    )
    parser.add_argument(
        "--length-sorted",
        action="store_true",
        help="tune in length-sorted batches (encoder_tuning_length_sorted)",
    )
    parser.add_argument(
        "--encoder-out",
        type=Path,
        help="where the tuned encoder is kept and reused "
        "(default: ~/.cache/distillrec/text-blend/<tag or dataset>)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a saved baseline model folder (<baselines out>/models/<name>) to pair every row against",
    )
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results" / "text_blend" / f"{args.tag or args.dataset}.json"

    try:
        data = teacher_data(
            args.teacher, DatasetConfig(source=args.dataset, user_fraction=args.user_fraction)
        )
        settings, split, seed = read_teacher_folder(args.teacher, data.dataset)
        teacher = load(args.teacher / "model").model
        baseline = load(args.baseline).model if args.baseline else None
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(str(exc)) from None
    text_table = np.load(args.teacher / "text_embeddings.npy")
    tuning: dict = {}
    if args.encoder_tuning_pairs:
        stock_text = tuned_text_only(text_table, split)
        encoder_out = args.encoder_out or Path.home() / ".cache/distillrec/text-blend" / (
            args.tag or args.dataset
        )
        tuned = settings.model_copy(
            update={
                "encoder_tuning_pairs": args.encoder_tuning_pairs,
                "encoder_tuning_length_sorted": args.length_sorted,
            }
        )
        text_table = encode_items(data, tuned, encoder_out).vectors
        tuning = {
            "encoder_tuning_pairs": args.encoder_tuning_pairs,
            "tuning": read_tuning(encoder_out / TUNED_ENCODER),
        }
    text = tuned_text_only(text_table, split)
    test_history = split.test_history()

    per_user: dict[str, np.ndarray] = {}  # each row's test NDCG@10 per user, for the paired tests

    def row(evaluation: Evaluation, valid: float) -> dict:
        slices = slice_summaries(evaluation, split.test, split.train)
        out = {"valid": {"NDCG@10": valid}, "test": evaluation.summary, "slices": slices}
        for name in ("teacher", "baseline"):  # the same test users in the same order
            if name in per_user:
                out[f"vs_{name}"] = paired_test(evaluation.per_user["NDCG@10"], per_user[name]).to_json()
        return out

    result: dict = {
        "dataset": args.dataset,
        "user_fraction": args.user_fraction,
        "teacher": str(args.teacher),
        "teacher_seed": seed,
        **tuning,
    }
    rows: dict = {}
    if baseline is not None:
        result["baseline"], per_user["baseline"] = baseline_row(baseline, args.baseline, test_history, split)
    with bf16_autocast(settings.bf16):
        references = [("text_only_stock", stock_text)] if args.encoder_tuning_pairs else []
        for name, model in [*references, ("text_only", text), ("teacher", teacher)]:
            valid = evaluate(model, split.train, split.valid).summary["NDCG@10"]
            evaluation = evaluate(model, test_history, split.test)
            rows[name] = row(evaluation, valid)
            per_user[name] = evaluation.per_user["NDCG@10"]
        start = time.perf_counter()
        blend = TextBlend(teacher, text).fit(split.train, split.valid)  # the pick with the tail floor
        seconds = time.perf_counter() - start
        curve = blend.weight_curve(test_history, split.test)  # every weight on the test, the picks among them
        test_by_weight = {
            str(w): {"NDCG@10": e.summary["NDCG@10"], "slices": slice_summaries(e, split.test, split.train)}
            for w, e in curve.items()
        }
        # the same validation scores picked without the floor (what TextBlend(tail_floor=False) picks)
        for name, weight in (("blend_free", pick_weight(blend.validation_)), ("blend", blend.weight_)):
            rows[name] = row(curve[weight], blend.validation_[weight]["NDCG@10"])
            rows[name].update(
                weight=weight,
                pick_seconds=round(seconds, 1),
                validation_by_weight={str(w): v for w, v in blend.validation_.items()},
                test_by_weight=test_by_weight,
            )
        rows["blend"]["text_tail_valid"] = blend.text_tail_
        # the floor again, each validation user weighted towards the test's expected popularity mix
        drift = TextBlend(teacher, text, drift=True).fit(split.train, split.valid)
        rows["blend_drift"] = row(curve[drift.weight_], blend.validation_[drift.weight_]["NDCG@10"])
        rows["blend_drift"].update(
            weight=drift.weight_,
            weighted_validation_by_weight={str(w): v for w, v in drift.validation_.items()},
            text_tail_weighted_valid=drift.text_tail_,
            vs_blend=paired_test(
                curve[drift.weight_].per_user["NDCG@10"], curve[blend.weight_].per_user["NDCG@10"]
            ).to_json(),
        )
        fallback = ColdStartFallback(blend, text_table)
        fallback.fit(split.train, split.valid)
        shifts = fallback.shift_curve(
            test_history, split.test
        )  # every shift on the test, the pick among them
        rows["blend_cold_fallback"] = row(shifts[fallback.shift_], fallback.validation_ndcg_[fallback.shift_])
        rows["blend_cold_fallback"].update(
            shift=str(fallback.shift_),  # "-inf": off
            validation_by_shift={str(k): v for k, v in fallback.validation_ndcg_.items()},
            test_by_shift={
                str(k): {
                    "NDCG@10": e.summary["NDCG@10"],
                    "slices": slice_summaries(e, split.test, split.train),
                }
                for k, e in shifts.items()
            },
        )
    for name, r in rows.items():
        print(
            f"{name}: test NDCG@10 {r['test']['NDCG@10']:.4f}",
            {k: round(v["NDCG@10"], 4) for k, v in r["slices"].items()},
            {k: r[k] for k in ("weight", "shift") if k in r},
            flush=True,
        )
    fraction = f" --user-fraction {args.user_fraction}" if args.user_fraction != 1.0 else ""
    tag = f" --tag {args.tag}" if args.tag else ""
    tag += f" --baseline BASELINES/models/{args.baseline.name}" if args.baseline else ""
    if args.encoder_tuning_pairs:
        tag += f" --encoder-tuning-pairs {args.encoder_tuning_pairs}" + (
            " --length-sorted" if args.length_sorted else ""
        )
    result.update(
        rows=rows,
        params=teacher.n_params(),
        command=f"benchmarks/text_blend.py {args.dataset} TEACHER{fraction}{tag}",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
