"""Stage 2, baselines: tune every baseline on validation, test it once, save it.

Input: `PreparedData`, a `BaselinesConfig` (models, quick grids, grids given per model) and a seed. Output:
`{name: BaselineResult}` and, in `out/`:

    metrics.json          one row per model (`results.py`; `BaselineResult.to_json` with kind "baseline"),
                          written after every model, keeping the rows of other models already there (an
                          interrupted stage loses little)
    manifest.json         per model: the stage's schema version, its grid and the data/split config
    models/<name>/        the tested model (`artifact.py`): load it with `distillrec.load`

The grid of a model is `config.grids[name]` when given, else its default (`models/registry.py`, smaller with
`quick`); every point of a model that takes a seed gets `seed`, and a model with a progress bar gets `progress`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from distillrec.artifact import save_model
from distillrec.config import BaselinesConfig
from distillrec.manifest import record_in_manifest
from distillrec.models.grid_search import BaselineResult, tune_and_test
from distillrec.models.params import BASELINE_PARAMS
from distillrec.models.registry import grid_for
from distillrec.results import read_results, write_results
from distillrec.stages.data import PreparedData
from distillrec.train.loop import EpochEnd

__all__ = ["run_baselines", "baseline_grid", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


def baseline_grid(
    name: str, config: BaselinesConfig, seed: int, progress: bool, device: str = "cpu"
) -> list[dict]:
    """The points `name` is tuned over (see the module docstring)."""
    default = grid_for(name, quick=config.quick, seed=seed)
    init = BASELINE_PARAMS[name].model_fields
    points = [dict(p) for p in config.grids[name]] if name in config.grids else default
    if "seed" in init:
        points = [{"seed": seed, **p} for p in points]
    if "progress" in init:
        points = [{"progress": progress, **p} for p in points]
    if "device" in init:
        points = [{"device": device, **p} for p in points]
    return points


def run_baselines(
    data: PreparedData,
    config: BaselinesConfig,
    out: str | Path,
    seed: int = 0,
    progress: bool = True,
    on_epoch: Callable[[dict, EpochEnd], None] | None = None,
    log: Callable[[str], None] = print,
    device: str = "cpu",
) -> dict[str, BaselineResult]:
    """Tune, test and save every model of `config.models` (see the module docstring)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.json"
    catalog = data.catalog()
    results = {}
    for name in config.models:
        grid = baseline_grid(name, config, seed, progress, device)
        result = tune_and_test(name, data.split, grid=grid, progress=progress, on_epoch=on_epoch)
        trained_on = data.split.test_history() if type(result.model).refit_for_test else data.split.train
        info = {"stage": "baselines", "name": name, "hparams": result.best_hparams, "test": result.test}
        save_model(result.model, out / "models" / name, catalog, trained_on, info)
        rows = read_results(metrics_path, default_kind="baseline") if metrics_path.exists() else {}
        rows[name] = {"kind": "baseline", **result.to_json()}
        write_results(metrics_path, rows)
        entry = {
            "schema_version": SCHEMA_VERSION,
            "seed": seed,
            "quick": config.quick,
            "grid": grid,
            "split": {"protocol": data.split.protocol, "params": dict(data.split.params)},
        }
        record_in_manifest(out, name, entry, data.dataset)
        log(
            f"  {name}: test NDCG@10 {result.test['NDCG@10']:.4f}, HR@10 {result.test['HR@10']:.4f}, best {result.best_hparams}"
        )
        results[name] = result
    return results
