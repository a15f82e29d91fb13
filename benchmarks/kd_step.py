"""Benchmark: one distillation training step (forward + backward) of the SASRec student, the KD terms on their
columns (`distill.objective`, as trained) against the same terms on the student's full scores.

    .venv/bin/python benchmarks/kd_step.py ml-latest-small --teacher ~/.cache/distillrec/bench-teacher/ml-latest-small \\
        --out benchmarks/results/kd_step/ml-latest-small.json

The full-scores form builds the student's (positions x items) score matrix for the KD positions and gives each
top-k term catalogue columns, as the objective did before it read columns only (soft at temperature 1: the
teacher's top-k and one column lumping the rest of the catalogue, as it did); its CE is the chunked
`softmax_ce` in both forms, so the difference is the KD terms' cost. For soft at temperature 1 a third form,
"columns, own lse", times the column form with soft computing its own catalogue log-sum-exp instead of
sharing CE's (`BoundKD.share_lse`), as it did before. Batches are the student's real training
batches (`--batch-size` windows of the dataset's leave-one-out training split, the teacher's labels read from
its folder). `--gather-cost 0` makes the column form always gather table rows, the choice `scores_at` makes on
large catalogues (it takes one GEMM and a gather when columns x width reach the number of items). Both forms and every method are timed round after round in one process, so the ratios are
measured under the same load; the absolute seconds depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DISTILLREC_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from distillrec.data.dataset import load_dataset  # noqa: E402
from distillrec.data.split import make_split  # noqa: E402
from distillrec.distill.objective import KDObjective, parse_kd, sample_negatives  # noqa: E402
from distillrec.layers.softmax_ce import softmax_ce  # noqa: E402
from distillrec.losses import student_scores  # noqa: E402
from distillrec.students.base import make_windows  # noqa: E402
from distillrec.students.registry import make_student  # noqa: E402

METHODS = "soft;rd;rrd;dllm2rec"


def full_scores_step(bound, module, batch) -> torch.Tensor:
    """The objective with every top-k term on the student's full scores (the form before the column terms)."""
    targets, rows = batch["targets"], batch["rows"]
    hidden = module(batch["inputs"], batch["users"])
    ce_mask, kd_mask = targets >= 0, bound.labels.mask(rows)
    table = module.item_table()
    total = softmax_ce(hidden[ce_mask], table, targets[ce_mask])
    student = module.logits(hidden[kd_mask])  # (m, n_items)
    items, scores = bound.labels.topk(rows[kd_mask], bound.k_max)
    for method, spec in bound.specs.items():
        loss, k = bound.composite.terms[method], bound.k[method]
        top, top_scores = items[:, :k], scores[:, :k]
        negatives = sample_negatives(top, bound.n_items, spec.negatives) if spec.negatives else None
        if method == "soft":  # the teacher's mass lumped in k + 1 columns, as the objective did
            rest = torch.logsumexp(student.scatter(1, top, float("-inf")), dim=1, keepdim=True)  # (m, 1)
            columns = torch.cat([student.gather(1, top), rest], dim=1)  # (m, k + 1)
            value = loss(columns, torch.cat([top_scores, torch.full_like(rest, float("-inf"))], dim=1))
        elif method == "dllm2rec":
            value = loss(student, top, confidence=top_scores, negative_items=negatives)
        else:
            value = loss(student, top, negatives)
        total = total + spec.weight * value
    return total


def columns_step(bound, module, batch) -> torch.Tensor:
    return bound(module, batch)


def own_lse_step(bound, module, batch) -> torch.Tensor:
    """The column form with soft computing its own catalogue log-sum-exp, not sharing CE's (the form before)."""
    bound.share_lse = False
    try:
        return bound(module, batch)
    finally:
        bound.share_lse = True


FORMS = {"full scores": full_scores_step, "columns": columns_step, "columns, own lse": own_lse_step}


def time_form(form, bound, module, batches, steps: int) -> float:
    """Mean seconds of one forward + backward over the first `steps` batches (after one warm-up step)."""
    seconds = []
    for batch in [batches[0], *batches[:steps]]:
        start = time.perf_counter()
        form(bound, module, batch).backward()
        seconds.append(time.perf_counter() - start)
        module.zero_grad(set_to_none=True)
    return float(np.mean(seconds[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--teacher", type=Path, required=True, help="folder written by `distillrec teacher`")
    parser.add_argument("--methods", default=METHODS, help="';'-separated KD specs (top-k terms)")
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per form, method and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--gather-cost",
        type=float,
        help="override losses.student_scores.GATHER_COST (0: always gather the columns' table rows)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.gather_cost is not None:
        student_scores.GATHER_COST = args.gather_cost
    train = make_split(load_dataset(args.dataset).interactions, "leave_one_out").train
    student = make_student("sasrec", dim=args.dim, max_len=args.max_len)
    windows = make_windows(train, args.max_len, last_position=True)
    order = np.random.default_rng(0).permutation(len(windows.users))
    batches = []
    for start in range(0, args.steps * args.batch_size, args.batch_size):
        index = torch.from_numpy(order[start : start + args.batch_size])
        batch = {
            name: torch.from_numpy(getattr(windows, name))[index] for name in ("inputs", "targets", "rows")
        }
        batches.append(batch | {"users": torch.from_numpy(windows.users)[index], "progress": 0.0})
    # a module per spec, from the same start: binding may change a module (ced wraps its item embedding)
    modules, bound = {}, {}
    for spec in args.methods.split(";"):
        torch.manual_seed(0)
        modules[spec] = student._build_module(train)
        bound[spec] = KDObjective(args.teacher, parse_kd(spec)[0]).bind(train, modules[spec])
    times = {  # the own-lse form only where the soft term shares CE's log-sum-exp (T = 1)
        (spec, form): []
        for spec in bound
        for form in FORMS
        if form != "columns, own lse" or bound[spec].share_lse
    }
    for _ in range(args.rounds):
        for spec, form in times:
            times[spec, form].append(time_form(FORMS[form], bound[spec], modules[spec], batches, args.steps))
    rows = []
    for spec in bound:
        full, columns = np.mean(times[spec, "full scores"]), np.mean(times[spec, "columns"])
        row = {
            "dataset": args.dataset,
            "method": spec,
            "n_items": train.n_items,
            "gather_cost": student_scores.GATHER_COST,
            "full_scores_s": round(float(full), 4),
            "columns_s": round(float(columns), 4),
            "speedup": round(float(full / columns), 2),
        }
        if (spec, "columns, own lse") in times:
            own = np.mean(times[spec, "columns, own lse"])
            row.update(own_lse_s=round(float(own), 4), share_speedup=round(float(own / columns), 2))
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"command": "benchmarks/kd_step.py " + " ".join(sys.argv[1:]), "threads": args.threads}
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
