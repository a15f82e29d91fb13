"""The teacher of a folder with and without the cold-start fallback (`ColdStartFallback`), on the test.

    .venv/bin/python benchmarks/cold_fallback.py amazon-beauty ~/.cache/distillrec/bench-teacher/amazon-beauty-fp32 \
        --out benchmarks/results/cold_items/amazon-beauty-fp32-fallback.json

The trained teacher comes back from the folder's checkpoint (nothing is trained). The fallback scores the items
without a training interaction by their text, mapped into the teacher's score scale; its one setting, the
shift, is picked on validation NDCG@10 over every validation user (off is among the choices). Then the teacher,
the teacher with the fallback and the text alone are tested once, in full ranking, with head / tail / cold
slices. Writes `{"teacher", "teacher_cold_fallback", "text_only"}` rows (`valid`, `test`, `slices`), the picked
shift, every shift's validation NDCG@10 and, to show the trade-off, every shift's test NDCG@10 overall and by
slice (only the validation pick is the method's result).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from distillrec.data.dataset import load_dataset  # noqa: E402
from distillrec.evaluate.ranking import evaluate  # noqa: E402
from distillrec.evaluate.slices import slice_summaries  # noqa: E402
from distillrec.models.cold_fallback import ColdStartFallback  # noqa: E402
from distillrec.models.text_similarity import TextSimilarity  # noqa: E402
from distillrec.stages.teacher import make_teacher_model, read_teacher_folder  # noqa: E402
from distillrec.train.loop import bf16_autocast  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("teacher", type=Path, help="folder written by `distillrec teacher`")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()

    try:
        settings, split, seed = read_teacher_folder(args.teacher, load_dataset(args.dataset))
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(str(exc)) from None
    metrics = args.teacher / "metrics.json"
    if not metrics.exists() or "teacher" not in json.loads(metrics.read_text()):
        raise SystemExit(
            f"{metrics}: no teacher row, so its training has not finished; run `distillrec teacher`"
        )
    checkpoint = args.teacher / "checkpoints" / "teacher" / "last.pt"
    if not checkpoint.exists():  # fit would train a new teacher from scratch
        raise SystemExit(f"{checkpoint}: missing; the teacher cannot be restored without it")
    text = np.load(args.teacher / "text_embeddings.npy")
    teacher = make_teacher_model(text, settings, args.teacher, seed, progress=False)
    teacher.fit(split.train, split.valid)  # restores the finished teacher from its checkpoint
    if teacher.fit_result_.resumed_from != len(teacher.history_):
        raise SystemExit(f"{checkpoint}: the teacher trained further instead of being restored")

    start = time.perf_counter()
    with bf16_autocast(settings.bf16):
        fallback = ColdStartFallback(teacher, text).fit(split.train, split.valid)
    tune_seconds = time.perf_counter() - start
    models = {
        "teacher": teacher,
        "teacher_cold_fallback": fallback,
        "text_only": TextSimilarity(text).fit(split.train),
    }
    result: dict = {}
    test_history = split.test_history()
    for name, model in models.items():
        with bf16_autocast(settings.bf16 and name != "text_only"):
            valid = evaluate(model, split.train, split.valid)
            test = evaluate(model, test_history, split.test)
        result[name] = {
            "valid": valid.summary,
            "test": test.summary,
            "slices": slice_summaries(test, split.test, split.train),
        }
        print(
            f"{name}: test NDCG@10 {test.summary['NDCG@10']:.4f}",
            {k: round(v["NDCG@10"], 4) for k, v in result[name]["slices"].items()},
        )
    with bf16_autocast(settings.bf16):
        curve = fallback.shift_curve(test_history, split.test)
    result["teacher_cold_fallback"].update(
        shift=str(fallback.shift_),  # "-inf" (off) is no JSON number
        valid_is_optimistic="valid is the score of the shift picked on validation",
        validation_ndcg_by_shift={str(k): v for k, v in fallback.validation_ndcg_.items()},
        # what every shift would have given on the test (only the validation pick is the method's result)
        test_by_shift={
            str(k): {"NDCG@10": e.summary["NDCG@10"], "slices": slice_summaries(e, split.test, split.train)}
            for k, e in curve.items()
        },
        cold_items=int(fallback.cold_.sum()),
        tune_seconds=round(tune_seconds, 1),
    )
    for k, e in curve.items():
        cold = slice_summaries(e, split.test, split.train).get("cold", {}).get("NDCG@10")
        print(f"shift {k}: test NDCG@10 {e.summary['NDCG@10']:.4f}, cold {cold}")
    result["command"] = f"benchmarks/cold_fallback.py {args.dataset} {args.teacher}"
    print(f"picked shift {fallback.shift_} from validation:", fallback.validation_ndcg_)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
