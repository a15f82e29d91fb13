"""Stage 5, compress: every student's KD model compressed by each of the config's methods, then evaluated.

Input: the prepared data, the teacher folder, the student stages' folders and a `CompressConfig`. Output, in
`out/`: one model folder per student and method (`<label>-<method>/`, written by `compress.compress_model`,
loadable with `distillrec.load`) and `metrics.json` (a results file, `results.py`: one row of kind "compressed"
per folder, named "<label> (KD) <method>", with the same full-ranking evaluation as every other model, its source
model and how much smaller its weights are). The report stage adds each folder's size on disk and latency.

With `kd_finetune_epochs`, mixed distillation: each compressed copy, decoded, is trained on with its KD objective
from the teacher folder for that many epochs (the student's own KD methods, or `kd_finetune_methods`), then
compressed again with its method: folder `<label>-<method>-ft/`, row "<label> (KD) <method> + fine-tune", beside
the copy without it. With `kd_finetune_aware` (the default) and a method `compression_aware.supports`, the
fine-tuning reads the weights as the method stores them (fake quantisation with straight-through gradients, fixed
pruning masks, fixed pq codes with trained codebooks), so compressing the result again changes nothing; the row
says which (`aware`). The methods that act when a student is built (param_init's table, ced's embedding) leave
the trained weights alone, so a param_init student is fine-tuned with cross-entropy alone (its row records the
methods); the epoch of best validation NDCG@10 is kept, which may be worse than the copy it started from (the
starting weights are not a candidate).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from distillrec.artifact import save_model
from distillrec.compress import compress_model
from distillrec.compression_aware import fold, make_aware, supports
from distillrec.config import CompressConfig, StudentConfig
from distillrec.distill.run import make_objective
from distillrec.evaluate.ranking import evaluate
from distillrec.recommend import load
from distillrec.results import write_results
from distillrec.stages.data import PreparedData
from distillrec.stages.report import student_names

__all__ = [
    "compress_students",
    "compress_and_evaluate",
    "finetune",
    "aware_steps",
    "key_config",
    "SCHEMA_VERSION",
    "compressed_name",
]

SCHEMA_VERSION = 2  # 2: fine-tuned rows named "+ fine-tune", their folders keep the model's own settings
FINETUNED = " + fine-tune"  # suffix of a fine-tuned copy's name


def key_config(settings: CompressConfig) -> dict:
    """The settings the pipeline keys the stage by: without fine-tuning the fine-tuning's options change nothing
    and are left out, so runs from before they existed keep their key."""
    dump = settings.model_dump()
    if not settings.kd_finetune_epochs:
        dump.pop("kd_finetune_aware")
        dump.pop("kd_finetune_lr")
    return dump


def compressed_name(label: str, method: str) -> str:
    """The report's name of a student's KD model compressed by `method`: "sasrec-soft (KD) int8"."""
    return f"{student_names(label)[0]} {method}"


def compress_students(
    data: PreparedData,
    teacher_dir: Path,
    students: dict[str, tuple[StudentConfig, Path]],
    settings: CompressConfig,
    out: str | Path,
    log=print,
    device: str = "cpu",
) -> dict[str, dict]:
    """See the module docstring; `students` maps each label to its config and stage folder. Returns the rows
    written to `metrics.json`."""
    out = Path(out)
    rows = {}
    for label, (student, folder) in students.items():
        for method in settings.methods:
            name = compressed_name(label, method)
            target = out / f"{label}-{method.replace(',', '+')}"
            rows[name] = compress_and_evaluate(
                data, folder / "model", target, method, settings, student_names(label)[0]
            )
            log(f"  {name}: {rows[name]['smaller_than_source']:.2f}x smaller, {_ndcg(rows[name])}")
            if settings.kd_finetune_epochs:
                kd = list(settings.kd_finetune_methods or student.kd)
                tuned = finetune(data, teacher_dir, kd, target, out, method, settings, device)
                final = target.with_name(target.name + "-ft")
                row = compress_and_evaluate(data, tuned, final, method, settings, name)
                shutil.rmtree(tuned)
                row["fine_tuned_with"], row["aware"] = kd, aware_steps(method, settings) is not None
                rows[name + FINETUNED] = row
                log(f"  {name}{FINETUNED}: {row['smaller_than_source']:.2f}x smaller, {_ndcg(row)}")
    write_results(out / "metrics.json", rows)
    return rows


def compress_and_evaluate(
    data: PreparedData, source: Path, target: Path, method: str, settings: CompressConfig, source_name: str
) -> dict:
    """Compress `source` into `target` with `method` (its options from `settings`); its results row."""
    result = compress_model(
        source,
        target,
        _steps(method),
        sparsity=settings.sparsity,
        rank=settings.rank,
        energy=settings.energy,
        subvectors=settings.subvectors,
    )
    model = load(result.folder).model
    split = data.split
    return {
        "kind": "compressed",
        "folder": result.folder.name,
        "valid": evaluate(model, split.train, split.valid).summary,
        "test": evaluate(model, split.test_history(), split.test).summary,
        "params": model.n_params(),
        "source": source_name,
        "methods": result.methods,
        "smaller_than_source": round(result.ratio, 3),
    }


def aware_steps(method: str, settings: CompressConfig) -> list[str] | None:
    """The codec steps a fine-tuning of a `method` copy is compression-aware of, or None (fine-tuned in float32):
    `kd_finetune_aware` off, or a method `compression_aware.supports` does not cover."""
    steps = _steps(method)
    return steps if settings.kd_finetune_aware and supports(steps) else None


def finetune(
    data: PreparedData,
    teacher_dir: Path,
    kd_methods,
    compressed: Path,
    out: Path,
    method: str,
    settings: CompressConfig,
    device: str = "cpu",
) -> Path:
    """The copy in `compressed` (made by `method`), decoded, trained `settings.kd_finetune_epochs` more epochs
    with the KD objective of `kd_methods` (strings as `--kd` takes them, or `TermSpec`s) from `teacher_dir`, at
    `settings.kd_finetune_lr` (default: a tenth of the model's own learning rate); saved as a float model folder
    in `out` (a temporary one, compressed again by the caller). Compression-aware where `aware_steps` says so:
    trained as those steps store the weights (`compression_aware.make_aware`, with the copy's sparsity and
    subvectors) and saved at the values the forward pass used."""
    saved = load(compressed)
    model = saved.model
    objective = make_objective(teacher_dir, kd_methods, change_student=False)
    kept = {k: getattr(model, k) for k in ("max_epochs", "patience", "progress", "device", "lr")}
    epochs = settings.kd_finetune_epochs
    model.max_epochs = model.patience = epochs
    model.progress, model.device = False, device
    model.lr = fine_tuning_lr = settings.kd_finetune_lr or model.lr / 10
    aware = aware_steps(method, settings)
    if aware is not None:
        make_aware(model.module_, aware, sparsity=settings.sparsity, subvectors=settings.subvectors)
    try:
        model.fit(data.split.train, data.split.valid, objective=objective, warm_start=True)
    finally:
        fold(model.module_)
    for name, value in kept.items():  # the folder keeps the model's own settings, not the fine-tuning's
        setattr(model, name, value)
    info = {
        k: v for k, v in saved.info.items() if k not in ("compression", "test", "valid")
    }  # not its results
    info["fine_tuned"] = {
        "epochs": epochs,
        "lr": fine_tuning_lr,
        "objective": objective.describe(),
        "aware": aware,
    }
    return save_model(
        model, Path(out) / f"{compressed.name}.finetuned", data.catalog(), data.split.train, info
    )


def _steps(method: str) -> list[str]:
    return [step.strip() for step in method.split(",")]


def _ndcg(row: dict) -> str:
    return f"test NDCG@10 {row['test']['NDCG@10']:.4f}"
