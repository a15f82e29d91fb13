"""Stage 5, compress: every student's KD model compressed by each of the config's methods, then evaluated.

Input: the prepared data, the student stages' folders and a `CompressConfig`. Output, in `out/`: one model folder
per student and method (`<label>-<method>/`, written by `compress.compress_model`, loadable with
`distillrec.load`) and `metrics.json` (a results file, `results.py`: one row of kind "compressed" per folder, named
"<label> (KD) <method>", with the same full-ranking evaluation as every other model, its source model and how
much smaller its weights are). The report stage adds each folder's size on disk and latency.
"""

from __future__ import annotations

from pathlib import Path

from distillrec.compress import compress_model
from distillrec.config import CompressConfig
from distillrec.evaluate.ranking import evaluate
from distillrec.recommend import load
from distillrec.results import write_results
from distillrec.stages.data import PreparedData
from distillrec.stages.report import student_names

__all__ = ["compress_students", "SCHEMA_VERSION", "compressed_name"]

SCHEMA_VERSION = 1


def compressed_name(label: str, method: str) -> str:
    """The report's name of a student's KD model compressed by `method`: "sasrec-soft (KD) int8"."""
    return f"{student_names(label)[0]} {method}"


def compress_students(
    data: PreparedData, student_dirs: dict[str, Path], settings: CompressConfig, out: str | Path, log=print
) -> dict[str, dict]:
    """See the module docstring; returns the rows written to `metrics.json`."""
    out = Path(out)
    split = data.split
    rows = {}
    for label, folder in student_dirs.items():
        for method in settings.methods:
            steps = [step.strip() for step in method.split(",")]
            result = compress_model(
                folder / "model",
                out / f"{label}-{method.replace(',', '+')}",
                steps,
                sparsity=settings.sparsity,
                rank=settings.rank,
                energy=settings.energy,
                subvectors=settings.subvectors,
            )
            model = load(result.folder).model
            name = compressed_name(label, method)
            rows[name] = {
                "kind": "compressed",
                "folder": result.folder.name,
                "valid": evaluate(model, split.train, split.valid).summary,
                "test": evaluate(model, split.test_history(), split.test).summary,
                "params": model.n_params(),
                "source": student_names(label)[0],
                "methods": result.methods,
                "smaller_than_source": round(result.ratio, 3),
            }
            log(f"  {name}: {result.ratio:.2f}x smaller, test NDCG@10 {rows[name]['test']['NDCG@10']:.4f}")
    write_results(out / "metrics.json", rows)
    return rows
