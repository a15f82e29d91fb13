"""The `distillrec` command line: the only module that reads `sys.argv`.

    distillrec data stats DATASET           users, items, interactions, density, sequence lengths, text coverage
    distillrec baselines DATASET --out DIR  tune and test MostPop, ItemKNN, EASE, iALS, BPR-MF, SASRec

DATASET is a known name (ml-100k, ml-latest-small, ml-1m; looked up under $DISTILLREC_DATA_DIR, then the user
cache, then downloaded) or a path to a folder (MovieLens raw layouts or the generic interactions/items format).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from distillrec.data.errors import DataError

app = typer.Typer(
    help="Distil pretrained language models' knowledge into small, fast recommenders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(stderr=True)

DatasetArg = Annotated[str, typer.Argument(help="Known name (ml-100k, ml-latest-small, ml-1m) or a folder path.")]
MinRating = Annotated[
    float | None, typer.Option(help="Keep only interactions with rating >= this (implicit conversion).")
]
MinUser = Annotated[int, typer.Option(help="k-core: drop users with fewer interactions (repeated with items).")]
MinItem = Annotated[int, typer.Option(help="k-core: drop items with fewer interactions.")]
Duplicates = Annotated[str, typer.Option(help="Repeated (user, item) pairs: keep 'first', 'last' or 'all'.")]


def _load(dataset: str, min_rating, duplicates, min_user, min_item):
    from distillrec.data.dataset import load_dataset

    return load_dataset(
        dataset,
        min_rating=min_rating,
        duplicates=duplicates,
        min_user_interactions=min_user,
        min_item_interactions=min_item,
    )


@data_app.command("stats")
def data_stats(
    dataset: DatasetArg,
    min_rating: MinRating = None,
    duplicates: Duplicates = "first",
    min_user: MinUser = 0,
    min_item: MinItem = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print users, items, interactions, density, sequence-length quantiles and item-text coverage."""
    ds = _load(dataset, min_rating, duplicates, min_user, min_item)
    stats = ds.stats()
    if as_json:
        print(json.dumps(stats, indent=2))
        return
    table = Table(title=f"{ds.name}")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key, value in stats.items():
        shown = f"{value:.6f}" if key == "density" else (f"{value:.1%}" if "coverage" in key else f"{value:,.1f}".removesuffix(".0"))
        table.add_row(key, shown)
    Console().print(table)


@app.command()
def baselines(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option(help="Folder for metrics.json and the manifest.")],
    models: Annotated[str, typer.Option(help="Comma-separated models to tune and test.")] = "mostpop,itemknn,ease,ials,bpr,sasrec",
    split: Annotated[str, typer.Option(help="leave_one_out | temporal | random_ratio | cold_item")] = "leave_one_out",
    min_rating: MinRating = None,
    duplicates: Duplicates = "first",
    min_user: MinUser = 0,
    min_item: MinItem = 0,
    quick: Annotated[bool, typer.Option(help="Smaller grids and epoch budgets (for smoke runs).")] = False,
    seed: Annotated[int, typer.Option(help="Seed for models and splits.")] = 0,
) -> None:
    """Tune every baseline on the validation item (small grid), then touch the test once; write metrics.json."""
    from distillrec.data.split import make_split
    from distillrec.manifest import write_manifest
    from distillrec.models.registry import BASELINES, grid_for
    from distillrec.tune.grid import tune_and_test

    names = [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in names if m not in BASELINES]
    if unknown:
        raise typer.BadParameter(f"unknown model(s) {unknown}; choose from {sorted(BASELINES)}", param_hint="--models")
    ds = _load(dataset, min_rating, duplicates, min_user, min_item)
    sp = make_split(ds.interactions, split)
    console.print(
        f"[bold]{ds.name}[/]: {ds.n_users:,} users, {ds.n_items:,} items, {len(ds.interactions):,} interactions; "
        f"split {split}: train {len(sp.train):,} / valid {len(sp.valid):,} / test {len(sp.test):,}"
    )
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.json"
    results = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    for name in names:
        start = time.perf_counter()
        result = tune_and_test(name, sp, grid=grid_for(name, quick=quick, seed=seed), progress=True)
        results[name] = result.to_json()
        metrics_path.write_text(json.dumps(results, indent=2))  # after every model: an interruption loses little
        console.print(
            f"  {name:<8} test NDCG@10 {result.test['NDCG@10']:.4f}  HR@10 {result.test['HR@10']:.4f}  "
            f"best {result.best_hparams}  ({time.perf_counter() - start:.0f} s)"
        )
    write_manifest(out, {"command": "baselines", "dataset": dataset, "split": split, "models": names,
                         "min_rating": min_rating, "duplicates": duplicates, "min_user": min_user,
                         "min_item": min_item, "quick": quick, "seed": seed}, inputs=ds)
    Console().print(metrics_table(results, title=f"{ds.name} ({split}, full ranking, test)"))


def metrics_table(results: dict, title: str) -> Table:
    columns = ["HR@10", "NDCG@10", "MRR", "Recall@20", "NDCG@20"]
    table = Table(title=title)
    table.add_column("model")
    for col in columns:
        table.add_column(col, justify="right")
    table.add_column("params", justify="right")
    table.add_column("train s", justify="right")
    for name, row in results.items():
        table.add_row(name, *[f"{row['test'][c]:.4f}" for c in columns], f"{row['params']:,}", f"{row['train_seconds']:.1f}")
    return table


def main() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        app()
    except DataError as exc:
        console.print(f"[red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
