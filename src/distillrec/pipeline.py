"""`distillrec run`: the whole pipeline from one config, into one run folder, reusing what has not changed.

Input: a `RunConfig`. Output: `runs/<name>-<timestamp>/` holding

    config.yaml             the fully resolved config
    data/                   the prepared dataset and its split (`stages/data.py`)
    baselines/              tuned baselines: metrics.json, models/<name>/ (`stages/baselines.py`)
    teacher/                the teacher: metrics, exported outputs, model/ (`stages/teacher.py`; with
                            `transfer:`, a teacher of another dataset carried over: `stages/transfer.py`)
    students/<label>/       KD vs plain: metrics.json, model/ and models/<variant>-seed<s>/ (`stages/distill.py`)
    transfer_curve/<share>/ the low-data curve of a transfer run (`transfer.fractions`, `stages/transfer_curve.py`)
    compressed/             compressed copies of the KD students (`compress:`, `stages/compress.py`)
    multitask/              the click-and-conversion comparison (`multitask:`, `stages/multitask.py`)
    metrics.json            every model in one table (the report's input; see `report/html.py`)
    metrics.jsonl           one line per training epoch of every trained model, written as it ends
                            (`tracking.py`; also MLflow / TensorBoard when `tracking.backends` asks)
    report.html             self-contained report
    run.log                 everything, per-epoch lines included, with each stage's one-line summary and time

Console output has three levels: "stage" (one line per stage with its time and headline result, and errors),
"info" (what each stage did, the default) and "debug" (also one line per training epoch); `run.log` always
gets all of them.

Each stage is written once, in `stages/`; this module only orders them, keys them and reuses them. Stages are
keyed by a hash of everything they read (the raw files and the data config for the data stage; then the dataset
fingerprint, split, their config section, their schema version and the keys of the stages they depend on). A stage whose key matches a finished stage of an earlier run of the same
config name is copied from there (hard links) instead of recomputed, so re-running after a crash or after
changing only a student costs only what changed. A stage is finished when its `stage.json` exists. A reused
stage's epoch lines are copied from the earlier run's `metrics.jsonl` (and sent to this run's other trackers).

Under torchrun (`torchrun --nproc-per-node N -m distillrec run CONFIG`, `train/distributed.py`) every process
runs every stage, so that all of them are inside the same training loops together; rank 0 decides whether a
stage is reused or computed and broadcasts it. Rank 0 writes the run folder as one process would. The other
ranks compute into a scratch copy of it (a temporary folder, removed at the end): before a stage they copy
what rank 0's folder holds of it (an interrupted stage's checkpoints, finished baselines), so every rank
resumes the same way, and a reused stage they read from rank 0's folder. They print nothing and write no
report.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from distillrec.config import RunConfig, dump_config
from distillrec.manifest import dataset_fingerprint
from distillrec.tracking import Trackers, open_trackers, require_backends
from distillrec.train import distributed

if TYPE_CHECKING:
    from distillrec.train.loop import EpochEnd

STAGE_FILE = "stage.json"
LEVELS = {"debug": 10, "info": 20, "stage": 30}  # console verbosity; run.log gets every level
# Keys of a metrics.jsonl line that name the training (see `_Run.on_epoch`); the other numeric ones are metrics.
_LINE_LABELS = ("stage", "seed", "grid_point")


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _Run:
    def __init__(
        self,
        run_dir: Path,
        runs_root: Path,
        name: str,
        log,
        level: str,
        trackers: Trackers,
        main_dir: Path | None = None,
    ) -> None:
        self.dir, self.root, self.name, self._log = run_dir, runs_root, name, log
        self.main_dir = main_dir or run_dir  # rank 0's run folder (under torchrun, `dir` is a scratch copy)
        self.level, self.trackers = LEVELS[level], trackers
        self.log_file = open(run_dir / "run.log", "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def log(self, message: str, level: str = "info") -> None:
        if LEVELS[level] >= self.level:
            self._log(message)
        self.log_file.write(f"{datetime.now().isoformat(timespec='seconds')} {message}\n")
        self.log_file.flush()

    def stage(self, rel: str, key: str, compute: Callable[[Path], str | None]) -> Path:
        """Run `compute(folder)` unless this or an earlier run of the same name finished it with `key`.
        `compute` may return a headline result for the stage's summary line. Under torchrun, see the module
        docstring."""
        main = distributed.is_main()
        folder = self.dir / rel
        source = distributed.broadcast(self._finished_in(rel, key) if main else None)
        if source is not None:
            if main:
                self._reuse(rel, folder, source)
            distributed.barrier()  # rank 0 has copied it
            return self.main_dir / rel
        if main and (folder / STAGE_FILE).exists():  # finished with other inputs: stale, checkpoints too
            shutil.rmtree(folder)
        if main:
            folder.mkdir(parents=True, exist_ok=True)
        distributed.barrier()  # rank 0's folder holds what an interrupted attempt left: the others copy it
        if not main:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(self.main_dir / rel, folder)
        distributed.barrier()  # nobody writes before every copy is taken
        start = time.perf_counter()
        summary = compute(folder)
        seconds = time.perf_counter() - start
        (folder / STAGE_FILE).write_text(json.dumps({"key": key, "seconds": seconds, "summary": summary}))
        self.log(f"[{rel}] done in {_duration(seconds)}{': ' + summary if summary else ''}", "stage")
        return folder

    def _finished_in(self, rel: str, key: str) -> str | None:
        """Where stage `rel` is finished with `key`: "" for this run, an earlier run's folder name, or None."""
        if _finished(self.dir / rel, key):
            return ""
        for previous in sorted(self.root.glob(f"{self.name}-*"), reverse=True):
            if previous != self.dir and _finished(previous / rel, key):
                return previous.name
        return None

    def _reuse(self, rel: str, folder: Path, source: str) -> None:
        """Log stage `rel` as done in this run (`source` ""), or copy it from the earlier run `source`."""
        if not source:
            self.log(f"[{rel}] already done in this run{_summary(folder)}", "stage")
            return
        previous = self.root / source
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(previous / rel, folder, copy_function=_link_or_copy)
        for line in _stage_lines(previous, rel):
            model, epoch = line.pop("model"), line.pop("epoch")
            labels = {k: v for k, v in line.items() if k in _LINE_LABELS or not _is_metric(v)}
            metrics = {k: v for k, v in line.items() if k not in labels}
            self.trackers.log_epoch(model, epoch, metrics, labels)
        self.log(f"[{rel}] reused from {previous.name} (inputs unchanged){_summary(folder)}", "stage")

    def on_epoch(self, stage: str, names: dict[str, str] | None = None) -> Callable:
        """An `on_epoch(labels, end)` for `tune_and_test`, `build_teacher` and `compare`: each training epoch
        goes to the trackers (metrics.jsonl, ...) and to the log at debug level. `names` renames models."""

        def on_epoch(labels: dict, end: EpochEnd) -> None:
            labels = dict(labels)
            model = labels.pop("model")
            model = (names or {}).get(model, model)
            metrics = {k: v for k, v in end.record.items() if k != "epoch"}
            self.trackers.log_epoch(model, end.epoch, metrics, {"stage": stage, **labels})
            valid = "-" if metrics.get("valid_ndcg10") is None else f"{metrics['valid_ndcg10']:.4f}"
            which = "".join(f" {k}={v}" for k, v in labels.items())
            self.log(
                f"  {model}{which} epoch {end.epoch}: loss {metrics['loss']:.4f}, valid NDCG@10 {valid} "
                f"({metrics['seconds']:.1f} s)",
                "debug",
            )

        return on_epoch

    def close(self, failed: bool = False) -> None:
        try:
            self.trackers.close(failed)
        finally:
            self.log_file.close()


def _finished(folder: Path, key: str) -> bool:
    path = folder / STAGE_FILE
    return path.exists() and json.loads(path.read_text()).get("key") == key


def _is_metric(value) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _summary(folder: Path) -> str:
    summary = json.loads((folder / STAGE_FILE).read_text()).get("summary")
    return f": {summary}" if summary else ""


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _stage_lines(run_dir: Path, rel: str) -> list[dict]:
    """The epoch lines of stage `rel` in `run_dir`'s metrics.jsonl (the last of any repeated epoch, e.g. after
    an interrupted attempt); for a run written before the lines carried a "stage", the histories in the stage's
    metrics.json."""
    lines: dict[str, dict] = {}
    path = run_dir / "metrics.jsonl"
    if path.exists():
        for text in path.read_text(encoding="utf-8").splitlines():
            line = json.loads(text) if text.strip() else {}
            if line.get("stage") == rel:
                which = json.dumps([line["model"], line["epoch"], *(line.get(k) for k in _LINE_LABELS)])
                lines.pop(which, None)  # keep the order of the last occurrence
                lines[which] = line
    if lines:
        return list(lines.values())
    path = run_dir / rel / "metrics.json"
    if not path.exists():  # a stage that trains nothing (data)
        return []
    metrics = json.loads(path.read_text())
    return [
        {"model": name, "stage": rel, **record}
        for name, row in metrics.items()
        if isinstance(row, dict)
        for record in row.get("history") or []
    ]


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def run_pipeline(
    config: RunConfig,
    runs_root: str | Path = "runs",
    run_dir: str | Path | None = None,
    log=print,
    level: str = "info",
) -> Path:
    """Run every stage of `config` into a run folder (see the module docstring); return the folder. `log`
    prints a console line; `level` ("debug", "info" or "stage") is the least important level it gets."""
    from distillrec.stages import (
        baselines,
        compress,
        distill,
        multitask,
        report,
        teacher,
        transfer,
        transfer_curve,
    )
    from distillrec.stages.data import SCHEMA_VERSION as DATA_SCHEMA
    from distillrec.stages.data import key_config, prepare_data, raw_files_key, read_prepared

    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; choose one of {list(LEVELS)}")
    require_backends(config.tracking.backends)  # a missing optional package fails before any folder is made
    runs_root = Path(runs_root)
    run_dir = Path(run_dir) if run_dir else runs_root / f"{config.name}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir = main_dir = Path(distributed.broadcast(str(run_dir)))  # under torchrun: rank 0's folder
    scratch = None
    if not distributed.is_main():  # see the module docstring: a scratch copy, no console, no report
        scratch = Path(tempfile.mkdtemp(prefix=f"distillrec-rank{distributed.world()[0]}-"))
        run_dir, log = scratch / main_dir.name, _silent
        config = config.model_copy(update={"progress": False, "tracking": type(config.tracking)()})
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(config))
    trackers = open_trackers(
        run_dir,
        config.tracking.backends,
        mlflow_uri=config.tracking.mlflow_uri,
        experiment=config.tracking.experiment or config.name,
        params=config.model_dump(mode="json"),
    )
    run = _Run(run_dir, runs_root, config.name, log, level, trackers, main_dir)
    failed = True
    try:
        raw_key = _key(key_config(config.dataset), config.split.model_dump(), raw_files_key(config.dataset))
        data_dir = run.stage(
            "data",
            _key(raw_key, DATA_SCHEMA),
            lambda folder: prepare_data(config.dataset, config.split, folder).summary(),
        )
        data = read_prepared(data_dir)
        for notice in data.dataset.notices:  # how the files were read, what preparation dropped, warnings
            run.log(f"  {notice}", "stage" if notice.startswith("warning") else "info")
        data_key = _key(dataset_fingerprint(data.dataset), config.split.model_dump())
        seed = config.seeds[0]

        def run_baselines(folder: Path) -> str:
            results = baselines.run_baselines(
                data,
                config.baselines,
                folder,
                seed=seed,
                progress=config.progress,
                on_epoch=run.on_epoch("baselines"),
                log=run.log,
                device=config.device,
            )
            best = max(results, key=lambda n: results[n].valid["NDCG@10"])
            return f"best on validation {best}, test NDCG@10 {results[best].test['NDCG@10']:.4f}"

        baselines_key = _key(data_key, config.baselines.model_dump(), seed, baselines.SCHEMA_VERSION)
        baselines_dir = run.stage("baselines", baselines_key, run_baselines)

        def run_teacher(folder: Path) -> str:
            metrics = teacher.build_teacher(
                data,
                folder,
                config.teacher,
                seed=seed,
                progress=config.progress,
                log=run.log,
                on_epoch=run.on_epoch("teacher"),
                device=config.device,
            )
            return (
                f"test NDCG@10 teacher {metrics['teacher']['test']['NDCG@10']:.4f}, "
                f"text-only {metrics['text_only']['test']['NDCG@10']:.4f}"
            )

        def run_transfer(folder: Path) -> str:
            metrics = transfer.transfer_teacher(
                config.transfer.source,
                data,
                folder,
                progress=config.progress,
                log=run.log,
                id_match=config.transfer.id_match,
            )
            zero_shot = metrics["teacher"]["test"]["NDCG@10"]
            return f"carried over from {config.transfer.source}: test NDCG@10 {zero_shot:.4f} without training here"

        if config.transfer is None:
            teacher_key = _key(data_key, teacher.key_config(config.teacher), seed, teacher.SCHEMA_VERSION)
            teacher_dir = run.stage("teacher", teacher_key, run_teacher)
        else:  # keyed by the source folder's manifest: a retrained source is carried over again
            _, source_manifest = teacher.teacher_manifest(config.transfer.source)
            source_key = [source_manifest.get("created"), source_manifest.get("config")]
            carried = config.transfer.model_dump(exclude={"fractions"})  # the curve is its own stage
            key_parts = (data_key, carried, source_key, transfer.SCHEMA_VERSION)
            teacher_key = _key(*key_parts)
            teacher_dir = run.stage("teacher", teacher_key, run_transfer)

        student_dirs, student_keys = {}, []
        for student in config.students:

            def run_students(folder: Path, student=student) -> str:
                names = dict(zip(distill.VARIANTS, report.student_names(student.label), strict=True))
                comparison = distill.run_students(
                    data,
                    teacher_dir,
                    student,
                    config.seeds,
                    folder,
                    progress=config.progress,
                    on_epoch=run.on_epoch(f"students/{student.label}", names),
                    device=config.device,
                )
                return (
                    f"test NDCG@10 KD {comparison.summary('student_kd')['test']['NDCG@10']:.4f} vs plain "
                    f"{comparison.summary('student_plain')['test']['NDCG@10']:.4f}"
                )

            key = _key(teacher_key, student.model_dump(), config.seeds, distill.SCHEMA_VERSION)
            student_dirs[student.label] = run.stage(f"students/{student.label}", key, run_students)
            student_keys.append(key)

        curve_dirs: dict[float, Path] = {}  # the low-data curve: one stage per share of the users
        for fraction in config.transfer.fractions if config.transfer is not None else []:

            def run_share(folder: Path, fraction=fraction) -> str:
                point = transfer_curve.run_share(
                    config.dataset,
                    config.split,
                    config.transfer,
                    fraction,
                    config.students,
                    config.seeds,
                    folder,
                    progress=config.progress,
                    log=run.log,
                    device=config.device,
                )
                return transfer_curve.describe(point)

            share = config.dataset.model_copy(update={"user_fraction": fraction})
            share_key = _key(key_config(share), config.split.model_dump(), raw_files_key(share), DATA_SCHEMA)
            students = [s.model_dump() for s in config.students]
            versions = (transfer.SCHEMA_VERSION, distill.SCHEMA_VERSION, transfer_curve.SCHEMA_VERSION)
            key = _key(share_key, carried, source_key, students, config.seeds, *versions)
            curve_dirs[fraction] = run.stage(f"transfer_curve/{fraction}", key, run_share)

        compressed_dir = None
        if config.compress.methods and student_dirs:

            def run_compress(folder: Path) -> str:
                students = {s.label: (s, student_dirs[s.label]) for s in config.students}
                rows = compress.compress_students(
                    data, teacher_dir, students, config.compress, folder, log=run.log, device=config.device
                )
                return f"{len(rows)} compressed model(s)"

            key = _key(student_keys, compress.key_config(config.compress), compress.SCHEMA_VERSION)
            compressed_dir = run.stage("compressed", key, run_compress)

        multitask_dir = None
        if config.multitask is not None:

            def run_multitask(folder: Path) -> str:
                summary = multitask.run_multitask(
                    config.dataset,
                    config.multitask,
                    folder,
                    config.seeds,
                    device=config.device,
                    progress=config.progress,
                    log=run.log,
                )
                last = config.multitask.variants[-1]
                ndcg = {n: r["conversion_NDCG@10"]["mean"] for n, r in summary["students"].items()}
                return f"conversion NDCG@10 student alone {ndcg['alone']:.4f}, {last} {ndcg[last]:.4f}"

            own = config.multitask.impressions  # a user's impressions table: keyed by its size and time too
            own_key = None if own is None else [os.path.getsize(own), int(os.path.getmtime(own))]
            key_parts = (
                raw_key,
                config.multitask.model_dump(),
                own_key,
                config.seeds,
                multitask.SCHEMA_VERSION,
            )
            key = _key(*key_parts)
            multitask_dir = run.stage("multitask", key, run_multitask)

        if scratch is None:
            start = time.perf_counter()
            path = report.write_report(
                run_dir,
                data,
                baselines_dir,
                teacher_dir,
                student_dirs,
                compressed_dir,
                multitask_dir,
                curve_dirs,
                config.dataset.user_fraction,
            )
            run.log(f"[report] {path} ({_duration(time.perf_counter() - start)})", "stage")
        failed = False
    except BaseException as exc:
        run.log_file.write(
            f"{datetime.now().isoformat(timespec='seconds')} failed: {exc!r}\n"
            + "".join(traceback.format_exception(exc))
        )
        raise
    finally:
        run.close(failed)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    distributed.barrier()  # the run is over for every rank at once
    return main_dir


def _silent(message: str) -> None:
    """The console of ranks other than 0 under torchrun: rank 0 prints for the run."""
