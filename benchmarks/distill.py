"""Benchmark: every KD method against the same student without KD, several seeds, one teacher folder.

    .venv/bin/python benchmarks/distill.py ml-100k --teacher DIR --student sasrec --params '{"dim": 32}' \\
        --seeds 0,1,2 --kd "soft;rd;dllm2rec;soft,dllm2rec" --tag sasrec32

What `distillrec distill` does for one KD spec, for many specs at once: the plain student of each seed is
trained once and shared by every spec (the comparison is the same; the budget is not spent S times on it).
Each finished (variant, seed) run is cached under `~/.cache/distillrec/bench-distill/<dataset>/` (keyed by
student, hyperparameters, spec, seed, teacher manifest and, for a student with a text tower, the text
embeddings), so an interrupted benchmark resumes with the runs it has and plain runs are shared between tags; an unfinished run checkpoints each epoch beside it (`<key>.ckpt/`, removed
when it finishes), so a killed process resumes that run from its last epoch. A run being trained is locked
(`<key>.lock`, the holder's pid): a second process on the same cache waits for its result instead of training
it twice, so two processes (e.g. one with `--plain-only` and reversed `--seeds`) can share one benchmark.
Output: `benchmarks/results/distill/<dataset>/<tag>.json`, `{spec: Comparison.to_json()}` (keys `student_kd`,
`student_plain`, `comparison`), rendered by `benchmarks/render.py distill`. Threads: one torch thread per process (set OMP_NUM_THREADS to change it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("DISTILLREC_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))

import numpy as np  # noqa: E402

from distillrec.data.dataset import load_dataset  # noqa: E402
from distillrec.data.split import make_split  # noqa: E402
from distillrec.distill.objective import KDObjective, parse_kd  # noqa: E402
from distillrec.distill.run import Comparison, StudentRun, _teacher_params, train_student  # noqa: E402
from distillrec.evaluate.slices import slice_summaries  # noqa: E402
from distillrec.students.registry import STUDENTS  # noqa: E402

NO_LAST = "@nolast"  # suffix of a spec: no KD-only position at each user's last training row


def _claim(lock: Path) -> bool:
    """Take `lock` for this process; False while a live process holds it (a dead holder's lock is taken over)."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(lock.read_text() or 0), 0)
            return False  # its holder is alive
        except (ProcessLookupError, ValueError, FileNotFoundError):
            lock.unlink(missing_ok=True)  # left by a killed process
            return _claim(lock)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def make_objective(teacher: Path, spec: str) -> KDObjective:
    """A `--kd` spec (with an optional `@nolast` suffix) -> its objective over the teacher folder."""
    text, last = (spec[: -len(NO_LAST)], False) if spec.endswith(NO_LAST) else (spec, True)
    terms, ce_weight = parse_kd(text)
    return KDObjective(teacher, terms, ce_weight, last_position=last)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument(
        "--teacher", type=Path, help="folder written by `distillrec teacher` (not with --plain-only)"
    )
    parser.add_argument("--student", default="sasrec", choices=sorted(STUDENTS))
    parser.add_argument("--params", default="{}", help="student hyperparameters as JSON")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--kd", help="';'-separated KD specs, e.g. 'soft;rd;soft,dllm2rec'")
    parser.add_argument("--tag", help="name of the result file")
    parser.add_argument(
        "--plain-only",
        action="store_true",
        help="only train (and cache) the students without KD, e.g. while the teacher still trains",
    )
    args = parser.parse_args()
    if not args.plain_only and not (args.teacher and args.kd and args.tag):
        parser.error("--teacher, --kd and --tag are required unless --plain-only")

    params = json.loads(args.params)
    text, text_key = None, None  # a student with a text tower reads the teacher folder's text embeddings
    if STUDENTS[args.student].needs_text:
        if args.teacher is None:
            parser.error(
                f"student {args.student!r} reads the text_embeddings.npy of a teacher folder: give --teacher"
            )
        text_path = args.teacher / "text_embeddings.npy"
        text, text_key = np.load(text_path), hashlib.sha256(text_path.read_bytes()).hexdigest()[:12]
    seeds = [int(s) for s in args.seeds.split(",")]
    specs = [s.strip() for s in (args.kd or "").split(";") if s.strip()]
    dataset = load_dataset(args.dataset)
    split = make_split(dataset.interactions, "leave_one_out")
    test_history = split.test_history()
    cache = Path.home() / ".cache" / "distillrec" / "bench-distill" / args.dataset
    cache.mkdir(parents=True, exist_ok=True)
    if args.plain_only:
        teacher_key = None  # plain runs do not read the teacher; with no spec, nothing else runs
        specs = []
    else:
        teacher_key = hashlib.sha256((args.teacher / "manifest.json").read_bytes()).hexdigest()[:12]
        out = ROOT / "benchmarks" / "results" / "distill" / args.dataset / f"{args.tag}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        results = json.loads(out.read_text()) if out.exists() else {}

    def run(variant: str, spec: str | None, seed: int) -> StudentRun:
        parts = [args.student, params, spec, seed, teacher_key if spec else None] + (
            [text_key] if text_key else []
        )
        key = json.dumps(parts, sort_keys=True)
        path = cache / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.pkl"
        # another process training this run: wait for its result instead of training it twice
        while not path.exists() and not _claim(path.with_suffix(".lock")):
            time.sleep(20)
        if path.exists():
            cached = pickle.loads(path.read_bytes())
            if cached.slices is None:  # cached before runs reported slices: its test evaluation has them
                cached.slices = slice_summaries(cached.test_evaluation, split.test, split.train)
            return cached
        objective = None if spec is None else make_objective(args.teacher, spec)
        checkpoint = path.with_suffix(".ckpt")  # a killed run resumes from its last epoch
        try:
            result = train_student(
                split,
                args.student,
                {**params, "progress": False} | ({} if text is None else {"text_embeddings": text}),
                seed,
                objective,
                variant,
                test_history,
                checkpoint_dir=checkpoint,
            )
            path.write_bytes(pickle.dumps(result))
            shutil.rmtree(checkpoint, ignore_errors=True)
        finally:
            path.with_suffix(".lock").unlink(missing_ok=True)
        print(
            f"{spec or 'plain':32s} seed {seed}: valid {result.valid['NDCG@10']:.4f} test {result.test['NDCG@10']:.4f} "
            f"epochs {result.epochs} (best {result.best_epoch}) {result.train_seconds:.0f} s",
            flush=True,
        )
        return result

    # The first spec's KD runs go first, so a `--plain-only` process can train the plain ones meanwhile (the
    # run cache is shared between processes).
    for seed in seeds if specs else []:
        run("student_kd", specs[0], seed)
    plain = [run("student_plain", None, seed) for seed in seeds]
    for spec in specs:
        kd = [run("student_kd", spec, seed) for seed in seeds]
        objective = make_objective(args.teacher, spec).describe()
        comparison = Comparison(
            args.student,
            params,
            objective,
            seeds,
            {"student_kd": kd, "student_plain": plain},
            _teacher_params(args.teacher),
        )
        results[spec] = comparison.to_json() | {"command": " ".join(["benchmarks/distill.py", *sys.argv[1:]])}
        pooled = results[spec]["comparison"]["pooled"]
        print(
            f"== {spec}: kd {pooled['mean_a']:.4f} plain {pooled['mean_b']:.4f} diff {pooled['mean_diff']:+.4f} "
            f"[{pooled['diff_ci_low']:+.4f}, {pooled['diff_ci_high']:+.4f}] p={pooled['t_pvalue']:.3g}",
            flush=True,
        )
        out.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
