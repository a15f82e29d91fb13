"""Distil and compare: one student trained with KD and without it (same budget, same seeds), evaluated honestly.

Input: a `Split`, a teacher folder (exported artifacts, `text_embeddings.npy`, `metrics.json`), a student name
and hyperparameters, the KD methods (`"soft,rd"` or `TermSpec`s) and the seeds. Output: `Comparison`, with for
each variant ("student_kd", "student_plain") and seed the validation and test summaries, the per-user test
metrics, the test metrics on head, long-tail and cold targets (`evaluate.slices`, as the teacher's), the parameter
count and the training time, and `to_json()` for `metrics.json`.

Protocol (as the baselines): each run trains on `split.train` with early stopping on validation NDCG@10
(history = train), then is tested once on `split.test` with history = train + valid, full ranking. Both
variants use the same hyperparameters, epoch budget, patience and seed; the only difference is the objective
(CE vs CE + KD terms read from the teacher's artifacts).

The KD-vs-plain comparison (`comparison`): the unit is the test user. Each user's NDCG@10 is first averaged
over the seeds of each variant (seed s of KD is paired with seed s of plain; averaging removes most of the
training noise), then the two per-user arrays are compared with a paired t-test and a Wilcoxon signed-rank test,
and a bootstrap interval of the mean difference is drawn by resampling users. Pooling the (user, seed) pairs as
independent observations would count each user S times and overstate the evidence, so it is not done; the
per-seed paired tests are reported beside the pooled one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from distillrec.artifact import Catalog, save_model
from distillrec.data.split import Split
from distillrec.distill.objective import KDObjective, TermSpec, parse_kd
from distillrec.evaluate.ranking import Evaluation, evaluate
from distillrec.evaluate.significance import bootstrap_ci, bootstrap_diff_ci, paired_test, seed_summary
from distillrec.evaluate.slices import slice_summaries
from distillrec.results import read_results
from distillrec.students.base import Student
from distillrec.students.registry import STUDENTS, make_student
from distillrec.train.loop import EpochEnd, fit_seconds

__all__ = [
    "StudentRun",
    "Comparison",
    "compare",
    "train_student",
    "fit_student",
    "resolve_student_params",
    "make_objective",
    "VARIANTS",
]

VARIANTS = ("student_kd", "student_plain")
COMPARED_METRIC = "NDCG@10"


@dataclass(eq=False)
class StudentRun:
    variant: str
    seed: int
    valid: dict[str, float]
    test: dict[str, float]
    test_evaluation: Evaluation = field(repr=False)
    params: int
    train_seconds: float
    best_epoch: int
    epochs: int
    # one record per epoch (loss, valid NDCG@10, seconds), as `fit_loop` writes
    history: list[dict] | None = None
    # test metrics on head / tail / cold targets, {slice: {"users": n, metric: mean}} (runs cached before slices
    # existed have None)
    slices: dict[str, dict[str, float]] | None = None

    def to_json(self) -> dict:
        row = {
            "seed": self.seed,
            "valid": self.valid,
            "test": self.test,
            "params": self.params,
            "train_seconds": round(self.train_seconds, 3),
            "best_epoch": self.best_epoch,
            "epochs": self.epochs,
        }
        if self.history:
            row["history"] = self.history
        if self.slices:
            row["slices"] = self.slices
        return row


def _mean_summaries(summaries: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([s[key] for s in summaries])) for key in summaries[0]}


def _mean_slices(runs: list[StudentRun]) -> dict[str, dict[str, float]] | None:
    """Each slice's metrics averaged over the runs (seeds); None unless every run has slices."""
    if any(not run.slices for run in runs):
        return None
    return {name: _mean_summaries([run.slices[name] for run in runs]) for name in runs[0].slices}


@dataclass(eq=False)
class Comparison:
    student: str
    student_params: dict
    objective: dict  # the KD objective, resolved
    seeds: list[int]
    runs: dict[str, list[StudentRun]]  # variant -> one run per seed, in `seeds` order
    teacher_params: int | None  # from the teacher folder's metrics.json, when present

    def per_user(self, variant: str, metric: str = COMPARED_METRIC) -> np.ndarray:
        """(n_seeds, n_test_users) per-user test metric of one variant."""
        return np.stack([run.test_evaluation.per_user[metric] for run in self.runs[variant]])

    def test_users(self) -> np.ndarray:
        return self.runs[VARIANTS[0]][0].test_evaluation.users

    def summary(self, variant: str) -> dict:
        runs = self.runs[variant]
        params = runs[0].params
        return {
            "student": self.student,
            "valid": _mean_summaries([r.valid for r in runs]),
            "test": _mean_summaries([r.test for r in runs]),
            "test_seeds": {m: seed_summary([r.test[m] for r in runs]) for m in ("NDCG@10", "HR@10", "MRR")},
            "test_slices": _mean_slices(runs),
            "per_seed": [r.to_json() for r in runs],
            "params": params,
            "params_fraction_of_teacher": None if not self.teacher_params else params / self.teacher_params,
            "train_seconds": float(np.mean([r.train_seconds for r in runs])),
            "hparams": self.student_params,
            "objective": self.objective if variant == "student_kd" else {"objective": "ce"},
        }

    def comparison(self, metric: str = COMPARED_METRIC) -> dict:
        kd, plain = self.per_user("student_kd", metric), self.per_user("student_plain", metric)
        kd_mean, plain_mean = kd.mean(axis=0), plain.mean(axis=0)  # (n_users,) seed-averaged
        pooled = paired_test(kd_mean, plain_mean).to_json()
        low, high = bootstrap_diff_ci(kd_mean, plain_mean)
        pooled.update(diff_ci_low=low, diff_ci_high=high)
        pooled["kd_ci"], pooled["plain_ci"] = bootstrap_ci(kd_mean), bootstrap_ci(plain_mean)
        per_seed = []
        for seed, a, b in zip(self.seeds, kd, plain, strict=True):
            test = paired_test(a, b).to_json()
            test["diff_ci_low"], test["diff_ci_high"] = bootstrap_diff_ci(a, b)
            per_seed.append({"seed": seed, **test})
        return {
            "metric": metric,
            "a": "student_kd",
            "b": "student_plain",
            "unit": "test user; each user's metric averaged over the seeds of each variant (seed-matched pairs)",
            "pooled": pooled,
            "per_seed": per_seed,
        }

    def to_json(self) -> dict:
        return {**{v: self.summary(v) for v in VARIANTS}, "comparison": self.comparison()}


def _teacher_params(teacher_dir: Path) -> int | None:
    path = teacher_dir / "metrics.json"
    if not path.exists():
        return None
    teacher = read_results(path, default_kind="teacher").get("teacher")
    return None if teacher is None else teacher.params


def make_objective(
    teacher_dir: Path, kd_methods, last_position: bool = True, change_student: bool = True
) -> KDObjective:
    """The KD objective of `kd_methods` ("soft,rd", a list of such strings, or `TermSpec`s) over a teacher folder
    (`change_student=False`: for a student fine-tuned from trained weights, see `KDObjective`)."""
    if isinstance(kd_methods, str):
        terms, ce_weight = parse_kd(kd_methods)
    elif all(isinstance(t, TermSpec) for t in kd_methods):
        terms, ce_weight = list(kd_methods), 1.0
    else:
        terms, ce_weight = parse_kd(",".join(kd_methods))
    return KDObjective(
        teacher_dir, terms, ce_weight=ce_weight, last_position=last_position, change_student=change_student
    )


def resolve_student_params(teacher_dir: str | Path, student_name: str, params: dict) -> dict:
    """`params` with what the student reads from the teacher folder: a student with a text tower gets the
    folder's `text_embeddings.npy` (unless given). An unknown student is an error listing the valid ones."""
    if student_name not in STUDENTS:
        raise ValueError(f"unknown student {student_name!r}; choose one of {sorted(STUDENTS)}")
    params = dict(params)
    if STUDENTS[student_name].needs_text and "text_embeddings" not in params:
        text_path = Path(teacher_dir) / "text_embeddings.npy"
        if not text_path.exists():
            raise FileNotFoundError(
                f"{text_path}: student {student_name!r} needs the teacher folder's text embeddings"
            )
        params["text_embeddings"] = np.load(text_path)
    return params


def fit_student(
    split: Split,
    student_name: str,
    params: dict,
    seed: int,
    objective: KDObjective | None,
    callbacks=(),
    checkpoint_dir: str | Path | None = None,
) -> Student:
    """One student (`objective=None`: plain cross-entropy) trained on `split.train` with early stopping on
    validation; the test is not read. With `checkpoint_dir`, an interrupted training resumes from its last
    finished epoch. The one place a student is trained (`train_student`, the tuner)."""
    model = make_student(student_name, **params, seed=seed)
    model.fit(
        split.train, split.valid, objective=objective, callbacks=callbacks, checkpoint_dir=checkpoint_dir
    )
    return model


def train_student(
    split: Split,
    student_name: str,
    params: dict,
    seed: int,
    objective: KDObjective | None,
    variant: str,
    test_history=None,
    callbacks=(),
    checkpoint_dir: str | Path | None = None,
    save_to: str | Path | None = None,
    catalog: Catalog | None = None,
) -> StudentRun:
    """`fit_student`, then test it once; `test_history` defaults to `split.test_history()` (pass it to avoid
    rebuilding it per run). With `save_to` and `catalog`, the trained student is saved there as a model folder
    (`artifact.py`)."""
    start = time.perf_counter()
    model = fit_student(split, student_name, params, seed, objective, callbacks, checkpoint_dir)
    seconds = fit_seconds(model, time.perf_counter() - start)  # a resumed run counts its earlier epochs too
    valid = evaluate(model, split.train, split.valid)
    test = evaluate(model, split.test_history() if test_history is None else test_history, split.test)
    if save_to is not None:
        if catalog is None:
            raise ValueError("saving a student needs the catalog it serves (ids and known histories)")
        info = {
            "stage": "distill",
            "student": student_name,
            "variant": variant,
            "seed": seed,
            "objective": objective.describe() if objective is not None else {"objective": "ce"},
            "test": test.summary,
        }
        save_model(model, save_to, catalog, split.train, info)
    return StudentRun(
        variant,
        seed,
        valid.summary,
        test.summary,
        test,
        model.n_params(),
        seconds,
        model.fit_result_.best_epoch,
        len(model.history_),
        model.history_,
        slice_summaries(test, split.test, split.train),
    )


def compare(
    split: Split,
    teacher_dir: str | Path,
    student_name: str,
    student_params: dict | None = None,
    kd_methods: str | list = "soft",
    seeds: tuple[int, ...] | list[int] = (0,),
    last_position: bool = True,
    progress: bool = True,
    on_epoch: Callable[[dict, EpochEnd], None] | None = None,
    checkpoint_root: str | Path | None = None,
    model_root: str | Path | None = None,
    catalog: Catalog | None = None,
) -> Comparison:
    """Train `student_name` with KD and without, once per seed; see the module docstring. `on_epoch(labels,
    end)` is called after every training epoch, with labels `{"model": variant, "seed": seed}`. With
    `checkpoint_root`, each run checkpoints into `checkpoint_root/<variant>-seed<seed>/`, so an interrupted
    comparison resumes (finished runs replay from their last checkpoint without training). With `model_root` and
    `catalog`, each trained student is saved to `model_root/<variant>-seed<seed>/` (`artifact.py`)."""
    teacher_dir = Path(teacher_dir)
    if "seed" in (student_params or {}):
        raise ValueError("give seeds through `seeds`, not student_params['seed']")
    params = resolve_student_params(teacher_dir, student_name, student_params or {})
    objective = make_objective(teacher_dir, kd_methods, last_position)
    make_student(student_name, **params)  # unknown hyperparameters fail here, before any training
    seeds = [int(s) for s in seeds]
    runs: dict[str, list[StudentRun]] = {v: [] for v in VARIANTS}
    test_history = split.test_history()
    jobs = [(seed, variant) for seed in seeds for variant in VARIANTS]
    bar = tqdm(jobs, desc=f"distil {student_name}", unit="run", disable=not progress)
    for seed, variant in bar:
        bar.set_postfix(seed=seed, variant=variant)
        callbacks = [partial(on_epoch, {"model": variant, "seed": seed})] if on_epoch else []
        kd = objective if variant == "student_kd" else None
        checkpoint_dir = None if checkpoint_root is None else Path(checkpoint_root) / f"{variant}-seed{seed}"
        save_to = None if model_root is None else Path(model_root) / f"{variant}-seed{seed}"
        runs[variant].append(
            train_student(
                split,
                student_name,
                params,
                seed,
                kd,
                variant,
                test_history,
                callbacks,
                checkpoint_dir,
                save_to,
                catalog,
            )
        )
    bar.close()
    shown = {k: v for k, v in params.items() if k != "text_embeddings"}
    if "text_embeddings" in params:
        shown["text_embeddings"] = str(teacher_dir / "text_embeddings.npy")
    return Comparison(student_name, shown, objective.describe(), seeds, runs, _teacher_params(teacher_dir))
