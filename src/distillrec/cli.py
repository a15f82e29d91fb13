"""The `distillrec` command line: the only module that reads `sys.argv`.

    distillrec data stats DATASET           users, items, interactions, density, sequence lengths, text coverage
    distillrec baselines DATASET --out DIR  tune and test MostPop, ItemKNN, EASE, iALS, BPR-MF, SASRec
    distillrec distill DATASET --teacher DIR --student NAME --kd METHODS --out DIR   KD vs plain student
    distillrec tune CONFIG --trials N --sampler tpe|random|grid   Optuna search of the config's `tune.space`
    distillrec recommend MODEL_DIR --user ID | --history ID,ID | --input requests.jsonl --output results.jsonl
    distillrec compress MODEL_DIR --method int8|int4|prune|lowrank[,int8] --out DIR
    distillrec export MODEL_DIR --format onnx --out DIR

DATASET is a known name (ml-100k, ml-latest-small, ml-1m; looked up under $DISTILLREC_DATA_DIR, then the user
cache, then downloaded) or a path to a folder (MovieLens raw layouts or the generic interactions/items format).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from distillrec.config import TeacherConfig
from distillrec.data.errors import DataError

_SHOW_TRACEBACK = {"on": False}


class _Commands(TyperGroup):
    """The command group: a mistake in the user's data, options, config or folders (the project's errors are
    `ValueError`s or `FileNotFoundError`s that name the file, key or option) is one line and exit code 2;
    `distillrec -v COMMAND` shows the traceback instead."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ValueError, FileNotFoundError) as exc:  # DataError, ConfigError, ModelFolderError, ...
            if _SHOW_TRACEBACK["on"]:
                raise
            console.print(f"[red]error:[/] {escape(str(exc))}")
            saved = _save_traceback(exc)
            console.print(f"(its traceback: {saved}; `distillrec -v ...` prints it)", style="dim")
            raise typer.Exit(2) from None


def _save_traceback(exc: BaseException) -> str:
    """The error's traceback in the user cache (a bug that looks like a user's mistake is then still traceable
    without running again); the path, or a note when it cannot be written."""
    import traceback

    from distillrec.data.download import cache_dir

    path = cache_dir() / "last-error.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    except OSError:
        return "not saved"
    return str(path)


app = typer.Typer(
    cls=_Commands,
    help="Distil pretrained language models' knowledge into small, fast recommenders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(stderr=True)
_TEACHER = TeacherConfig.model_fields  # the teacher options' defaults are the config's (`config.py`)

DatasetArg = Annotated[
    str,
    typer.Argument(
        help="A folder path, a folder under $DISTILLREC_DATA_DIR (e.g. amazon-beauty, amazon-health), or a name "
        "downloaded on first use (ml-100k, ml-latest-small, ml-1m)."
    ),
]
MinRating = Annotated[
    float | None, typer.Option(help="Keep only interactions with rating >= this (implicit conversion).")
]
MinUser = Annotated[
    int, typer.Option(help="k-core: drop users with fewer interactions (repeated with items).")
]
MinItem = Annotated[int, typer.Option(help="k-core: drop items with fewer interactions.")]
Duplicates = Annotated[str, typer.Option(help="Repeated (user, item) pairs: keep 'first', 'last' or 'all'.")]
Columns = Annotated[
    str | None,
    typer.Option(
        help="The interactions file's own column names (generic layout): "
        "user_id=userId,item_id=productId,timestamp=ts[,rating=stars]."
    ),
]
ItemColumns = Annotated[str | None, typer.Option(help="The items file's own id column: item_id=productId.")]
UserFraction = Annotated[
    float,
    typer.Option(
        help="Keep this share of the users (a seeded draw after the filters; the others are not seen at all): "
        "low-data runs, e.g. 0.1.",
        min=0.0,
        max=1.0,
    ),
]
UserSeed = Annotated[int, typer.Option(help="Seed of the --user-fraction draw.")]
Device = Annotated[
    str,
    typer.Option(
        help="Where the torch models train: auto (a CUDA GPU when torch sees one, else the CPU) | cpu | cuda | "
        "cuda:N | mps."
    ),
]
UserColumns = Annotated[str | None, typer.Option(help="The users file's own id column: user_id=customer.")]
TimestampFormat = Annotated[
    str,
    typer.Option(
        help="auto (Unix seconds, milliseconds or ISO 8601 dates, recognised) | unix | unix_ms | iso | "
        "a strftime pattern such as '%d/%m/%Y'."
    ),
]


def _mapping(text: str | None, option: str) -> dict[str, str]:
    """'user_id=userId,item_id=productId' -> {"user_id": "userId", "item_id": "productId"}."""
    if not text:
        return {}
    mapping = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        ours, sep, theirs = part.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise typer.BadParameter(
                f"expected ours=theirs pairs like user_id=userId, got {part!r}", param_hint=option
            )
        mapping[ours.strip()] = theirs.strip()
    return mapping


def _dataset_config(
    dataset: str,
    min_rating,
    duplicates,
    min_user,
    min_item,
    columns=None,
    item_columns=None,
    user_columns=None,
    timestamp_format="auto",
    user_fraction: float = 1.0,
    user_seed: int = 0,
):
    from distillrec.config import DatasetConfig

    try:
        return DatasetConfig(
            user_fraction=user_fraction,
            user_seed=user_seed,
            source=dataset,
            min_rating=min_rating,
            duplicates=duplicates,
            min_user_interactions=min_user,
            min_item_interactions=min_item,
            columns=_mapping(columns, "--columns"),
            item_columns=_mapping(item_columns, "--item-columns"),
            user_columns=_mapping(user_columns, "--user-columns"),
            timestamp_format=timestamp_format,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        if error["loc"]:
            raise _bad_parameter(exc) from None
        message = str(error.get("ctx", {}).get("error", error["msg"]))  # a check across fields
        raise typer.BadParameter(message, param_hint="--columns / --timestamp-format") from None


def _load(dataset_config):
    from distillrec.stages.data import read_dataset

    ds = read_dataset(dataset_config)
    _print_notices(ds.notices)
    return ds


def _print_notices(notices) -> None:
    for notice in notices:
        console.print(
            f"[yellow]{escape(notice)}[/]" if notice.startswith("warning") else f"note: {escape(notice)}"
        )


def _prepare(dataset_config, split: str, split_params: dict):
    """The data stage for a command: the dataset read, prepared and split (nothing written)."""
    from distillrec.config import SplitConfig
    from distillrec.stages.data import prepare_data

    try:
        split_config = SplitConfig(protocol=split, params=split_params)
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"], param_hint="--split") from None
    data = prepare_data(dataset_config, split_config)
    _print_notices(data.dataset.notices)
    console.print(data.summary())
    return data


def _bad_parameter(exc: ValidationError) -> typer.BadParameter:
    """A config value out of range, e.g. --dropout 1.5: name the option, not a traceback. A rule between options
    (no one option to name, e.g. --export-blend without --text-blend) gives its own message."""
    error = exc.errors()[0]
    if not error["loc"]:
        return typer.BadParameter(error["msg"].removeprefix("Value error, "))
    option = "--" + str(error["loc"][0]).replace("_", "-")
    return typer.BadParameter(f"{error['msg']}, got {error['input']!r}", param_hint=option)


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Folder to write (interactions.parquet, items.parquet).")],
    users: Annotated[int, typer.Option(help="Users.", min=1)] = 10_000,
    items: Annotated[int, typer.Option(help="Items.", min=1)] = 10_000,
    interactions: Annotated[int, typer.Option(help="Interactions in total.", min=1)] = 200_000,
    topics: Annotated[int, typer.Option(help="Topics the items (and their text) fall into.", min=1)] = 50,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """Write a synthetic dataset: power-law item popularity, users whose interests drift between topics, item
    text that names the topic (see `data/synth.py`). Read it like your own data: `distillrec data stats OUT`."""
    from distillrec.data.synth import SynthSettings, synthesize

    folder = synthesize(users, items, interactions, out, SynthSettings(n_topics=topics, seed=seed))
    console.print(
        f"[bold green]wrote[/] {folder}: {users:,} users, {items:,} items, {interactions:,} interactions"
    )


@data_app.command("stats")
def data_stats(
    dataset: DatasetArg,
    min_rating: MinRating = None,
    duplicates: Duplicates = "first",
    min_user: MinUser = 0,
    min_item: MinItem = 0,
    columns: Columns = None,
    item_columns: ItemColumns = None,
    user_columns: UserColumns = None,
    timestamp_format: TimestampFormat = "auto",
    user_fraction: UserFraction = 1.0,
    user_seed: UserSeed = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print users, items, interactions, density, sequence-length quantiles and item-text coverage."""
    ds = _load(
        _dataset_config(
            dataset,
            min_rating,
            duplicates,
            min_user,
            min_item,
            columns,
            item_columns,
            user_columns,
            timestamp_format,
            user_fraction,
            user_seed,
        )
    )
    stats = ds.stats()
    if as_json:
        print(json.dumps(stats, indent=2))
        return
    table = Table(title=f"{ds.name}")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key, value in stats.items():
        shown = (
            f"{value:.6f}"
            if key == "density"
            else (f"{value:.1%}" if "coverage" in key else f"{value:,.1f}".removesuffix(".0"))
        )
        table.add_row(key, shown)
    Console().print(table)


@app.command()
def baselines(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option(help="Folder for metrics.json and the manifest.")],
    models: Annotated[
        str, typer.Option(help="Comma-separated models to tune and test.")
    ] = "mostpop,itemknn,ease,ials,bpr,sasrec",
    split: Annotated[
        str, typer.Option(help="leave_one_out | temporal | random_ratio | cold_item")
    ] = "leave_one_out",
    min_rating: MinRating = None,
    duplicates: Duplicates = "first",
    min_user: MinUser = 0,
    min_item: MinItem = 0,
    columns: Columns = None,
    item_columns: ItemColumns = None,
    user_columns: UserColumns = None,
    timestamp_format: TimestampFormat = "auto",
    user_fraction: UserFraction = 1.0,
    user_seed: UserSeed = 0,
    quick: Annotated[bool, typer.Option(help="Smaller grids and epoch budgets (for smoke runs).")] = False,
    grid_file: Annotated[
        Path | None,
        typer.Option(
            help="JSON file mapping each model name to a list of hyperparameter dicts (replaces its default grid)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for models and splits.")] = 0,
    device: Device = "auto",
) -> None:
    """Tune every baseline on the validation item (small grid), then touch the test once; write metrics.json
    and each tested model to OUT/models/<name> (`distillrec recommend OUT/models/ease --user 1`)."""
    from distillrec.config import BaselinesConfig
    from distillrec.models.registry import BASELINES
    from distillrec.results import read_results
    from distillrec.stages.baselines import run_baselines

    names = [m.strip() for m in models.split(",") if m.strip()]
    grids = {}
    if grid_file is not None:
        grids = json.loads(grid_file.read_text())
        for name, points in grids.items():
            if (
                name not in BASELINES
                or not isinstance(points, list)
                or not all(isinstance(p, dict) for p in points)
            ):
                raise typer.BadParameter(
                    f"{grid_file}: key {name!r} must be a model name mapping to a list of "
                    f"hyperparameter dicts; models: {sorted(BASELINES)}",
                    param_hint="--grid-file",
                )
    try:
        settings = BaselinesConfig(models=names, quick=quick, grids=grids)
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"], param_hint="--models") from None
    data = _prepare(
        _dataset_config(
            dataset,
            min_rating,
            duplicates,
            min_user,
            min_item,
            columns,
            item_columns,
            user_columns,
            timestamp_format,
            user_fraction,
            user_seed,
        ),
        split,
        {},
    )
    run_baselines(data, settings, out, seed=seed, log=console.print, device=_device(device))
    results = {n: r.model_dump() for n, r in read_results(out / "metrics.json").items()}
    Console().print(metrics_table(results, title=f"{data.dataset.name} ({split}, full ranking, test)"))


@app.command()
def teacher(
    dataset: DatasetArg,
    out: Annotated[
        Path, typer.Option(help="Folder for the teacher's metrics, weights and exported outputs.")
    ],
    encoder: Annotated[
        str, typer.Option(help="Text encoder: a name (all-MiniLM-L6-v2) or a local model folder.")
    ] = _TEACHER["encoder"].default,
    template: Annotated[
        str | None, typer.Option(help="Item text template, e.g. '{title}[. Genres: {genres}]'.")
    ] = _TEACHER["template"].default,
    split: Annotated[
        str, typer.Option(help="leave_one_out | temporal | random_ratio | cold_item")
    ] = "leave_one_out",
    dim: Annotated[int, typer.Option(help="Teacher width.")] = _TEACHER["dim"].default,
    n_layers: Annotated[int, typer.Option(help="Transformer blocks.")] = _TEACHER["n_layers"].default,
    max_len: Annotated[int, typer.Option(help="Longest history the teacher reads.")] = _TEACHER[
        "max_len"
    ].default,
    dropout: Annotated[float, typer.Option(help="Dropout rate.")] = _TEACHER["dropout"].default,
    max_epochs: Annotated[
        int, typer.Option(help="Epoch budget (early stopping on validation NDCG@10).")
    ] = _TEACHER["max_epochs"].default,
    patience: Annotated[
        int, typer.Option(help="Evaluations without improvement before stopping.")
    ] = _TEACHER["patience"].default,
    top_k: Annotated[int, typer.Option(help="Soft labels exported per training position.")] = _TEACHER[
        "top_k"
    ].default,
    bf16: Annotated[
        bool,
        typer.Option(
            help="bfloat16 autocast for the teacher's training, evaluation and export "
            "(scores stay float32; faster on CPUs with AMX/AVX512-BF16)."
        ),
    ] = _TEACHER["bf16"].default,
    length_buckets: Annotated[
        bool,
        typer.Option(
            help="Batch histories of similar length (less padding: faster when lengths vary, e.g. ml-1m)."
        ),
    ] = _TEACHER["length_buckets"].default,
    negatives: Annotated[
        int,
        typer.Option(
            help="0: full softmax; N: sampled softmax against N popularity-drawn negatives per batch "
            "(logQ-corrected; for large catalogues).",
            min=0,
        ),
    ] = _TEACHER["negatives"].default,
    softmax_over_trained: Annotated[
        bool,
        typer.Option(
            help="Train the softmax over items with training interactions "
            "only, so items without any are not learnt as negatives "
            "(cold items)."
        ),
    ] = _TEACHER["softmax_over_trained"].default,
    id_dropout: Annotated[
        float,
        typer.Option(
            help="Probability of dropping an item's ID vector in training, so "
            "the text alone must score it (cold items; DropoutNet)."
        ),
    ] = _TEACHER["id_dropout"].default,
    encoder_tuning_pairs: Annotated[
        int,
        typer.Option(
            min=0,
            help="Fine-tune the text encoder first on this many co-occurring item pairs of the training "
            "histories (0: the encoder as it is).",
        ),
    ] = _TEACHER["encoder_tuning_pairs"].default,
    encoder_tuning_length_sorted: Annotated[
        bool,
        typer.Option(
            help="Tune the encoder in batches of similar text length: less padding (faster on long texts), "
            "less random in-batch negatives (weaker on ml-100k and Amazon Beauty).",
        ),
    ] = _TEACHER["encoder_tuning_length_sorted"].default,
    fusion: Annotated[
        str,
        typer.Option(
            help="How text and ID vectors make the item table: adapter (id + MLP(text)), pca_init (IDs started "
            "at the text's principal coordinates), nullspace (frozen text directions beside learned ID ones)."
        ),
    ] = _TEACHER["fusion"].default,
    semantic_dims: Annotated[
        int, typer.Option(min=0, help="nullspace: text directions kept (0: half of --dim).")
    ] = _TEACHER["semantic_dims"].default,
    train_text: Annotated[
        bool, typer.Option(help="nullspace: train the text directions too (default: frozen).")
    ] = _TEACHER["train_text"].default,
    exclude_seen: Annotated[
        bool,
        typer.Option(
            help="Soft labels only over items the user has not seen yet (turn off for repeat consumption)."
        ),
    ] = _TEACHER["exclude_seen"].default,
    compare_id_only: Annotated[
        bool, typer.Option(help="Also train an ID-only SASRec of the same size and budget.")
    ] = _TEACHER["compare_id_only"].default,
    cold_fallback: Annotated[
        bool,
        typer.Option(
            help="Also test the teacher with items that have no training interaction scored by their text "
            "(ColdStartFallback, its shift picked on validation): row teacher_cold_fallback."
        ),
    ] = _TEACHER["cold_fallback"].default,
    text_blend: Annotated[
        bool,
        typer.Option(
            help="Also test the teacher's scores blended with the text-only model's (TextBlend: per-user "
            "z-scores added with a weight picked on validation, keeping the text's tail): row teacher_text_blend."
        ),
    ] = _TEACHER["text_blend"].default,
    text_blend_drift: Annotated[
        bool,
        typer.Option(
            help="With --text-blend: pick its weight over validation users weighted so their targets are as "
            "rare as the later test targets are expected to be (estimated from the training histories one step "
            "earlier). Gives the text more weight where a catalogue drifts towards new items."
        ),
    ] = _TEACHER["text_blend_drift"].default,
    export_blend: Annotated[
        bool,
        typer.Option(
            help="Export the blend's soft labels for the students instead of the teacher's own (with "
            "--text-blend): the text's ranking of rare items, at the teacher's scale."
        ),
    ] = _TEACHER["export_blend"].default,
    min_rating: MinRating = None,
    duplicates: Duplicates = "first",
    min_user: MinUser = 0,
    min_item: MinItem = 0,
    columns: Columns = None,
    item_columns: ItemColumns = None,
    user_columns: UserColumns = None,
    timestamp_format: TimestampFormat = "auto",
    user_fraction: UserFraction = 1.0,
    user_seed: UserSeed = 0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    device: Device = "auto",
) -> None:
    """Encode item text with a language model, train the LLM-enhanced teacher and export its outputs; the
    trained teacher is saved to OUT/model (`distillrec recommend OUT/model --user 1`)."""
    from distillrec.stages.teacher import build_teacher

    try:
        settings = TeacherConfig(
            encoder=encoder,
            template=template,
            dim=dim,
            n_layers=n_layers,
            max_len=max_len,
            dropout=dropout,
            max_epochs=max_epochs,
            patience=patience,
            top_k=top_k,
            bf16=bf16,
            length_buckets=length_buckets,
            negatives=negatives,
            softmax_over_trained=softmax_over_trained,
            id_dropout=id_dropout,
            encoder_tuning_pairs=encoder_tuning_pairs,
            encoder_tuning_length_sorted=encoder_tuning_length_sorted,
            fusion=fusion,
            semantic_dims=semantic_dims,
            train_text=train_text,
            exclude_seen=exclude_seen,
            compare_id_only=compare_id_only,
            cold_fallback=cold_fallback,
            text_blend=text_blend,
            text_blend_drift=text_blend_drift,
            export_blend=export_blend,
        )
    except ValidationError as exc:
        raise _bad_parameter(exc) from None
    data = _prepare(
        _dataset_config(
            dataset,
            min_rating,
            duplicates,
            min_user,
            min_item,
            columns,
            item_columns,
            user_columns,
            timestamp_format,
            user_fraction,
            user_seed,
        ),
        split,
        {},
    )
    metrics = build_teacher(data, out, settings, seed=seed, log=console.print, device=_device(device))
    Console().print(
        metrics_table(metrics, title=f"{data.dataset.name} teacher ({split}, full ranking, test)")
    )


@app.command()
def distill(
    dataset: DatasetArg,
    teacher: Annotated[
        Path, typer.Option(help="Teacher folder written by `distillrec teacher` (artifacts, metrics).")
    ],
    student: Annotated[str, typer.Option(help="Student: sasrec | gru4rec | mf | two_tower.")],
    kd: Annotated[
        str,
        typer.Option(
            help="KD methods, comma-separated, each with optional :key=value options, "
            "e.g. 'soft', 'soft,rd:k=20', 'dllm2rec,ce:weight=0.5'."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for metrics.json, per_user.npz, the manifest and the runs' "
            "checkpoints (an interrupted command resumes from them)."
        ),
    ],
    seeds: Annotated[
        str, typer.Option(help="Comma-separated seeds; each trains one KD and one plain student.")
    ] = "0",
    dim: Annotated[int | None, typer.Option(help="Student width (default: the student's own).")] = None,
    n_layers: Annotated[int | None, typer.Option(help="Student layers (sasrec, gru4rec).")] = None,
    max_len: Annotated[int | None, typer.Option(help="Longest history the student reads.")] = None,
    dropout: Annotated[float | None, typer.Option(help="Student dropout.")] = None,
    max_epochs: Annotated[
        int | None, typer.Option(help="Epoch budget (early stopping on validation NDCG@10).")
    ] = None,
    patience: Annotated[
        int | None,
        typer.Option(
            help="Evaluations without improvement before stopping (student default 30). Validation curves can "
            "sit on a long plateau: on ml-latest-small and ml-100k, 10 stopped both students well short of "
            "what 30 reached (BENCHMARKS.md, section 4)."
        ),
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    last_position: Annotated[
        bool, typer.Option(help="Use each user's last training row as a KD-only position.")
    ] = True,
    bf16: Annotated[bool, typer.Option(help="bfloat16 autocast for student training (sasrec).")] = False,
    length_buckets: Annotated[
        bool, typer.Option(help="Batch histories of similar length (sasrec; faster when lengths vary).")
    ] = False,
    baselines: Annotated[
        Path | None, typer.Option(help="Folder of `distillrec baselines` (its metrics.json).")
    ] = None,
    min_rating: MinRating = None,
    duplicates: Duplicates = "first",
    min_user: MinUser = 0,
    min_item: MinItem = 0,
    columns: Columns = None,
    item_columns: ItemColumns = None,
    user_columns: UserColumns = None,
    timestamp_format: TimestampFormat = "auto",
    user_fraction: UserFraction = 1.0,
    user_seed: UserSeed = 0,
    device: Device = "auto",
    transfer: Annotated[
        bool,
        typer.Option(
            help="The teacher was trained on another dataset: carry it to DATASET through item text (OUT/teacher: "
            "each item encoded with its encoder and placed at its nearest source item by text; no shared ids)."
        ),
    ] = False,
) -> None:
    """Train a small student with and without KD from the teacher's exported outputs; compare with a paired test.
    Every trained student is saved under OUT/models/, the KD student of the first seed to OUT/model.

    With --transfer, the teacher folder may come from another dataset (`stages/transfer.py`)."""
    from distillrec.config import StudentConfig
    from distillrec.stages.distill import run_students
    from distillrec.stages.teacher import teacher_data
    from distillrec.students.params import STUDENT_PARAMS
    from distillrec.students.registry import student_params

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        seed_list = []
    if not seed_list:
        raise typer.BadParameter(
            f"seeds must be comma-separated integers, got {seeds!r}", param_hint="--seeds"
        )
    manifest_path = teacher / "manifest.json"
    if not manifest_path.exists():
        raise typer.BadParameter(
            f"{manifest_path} does not exist; build the teacher with `distillrec teacher`",
            param_hint="--teacher",
        )
    given = {
        "dim": dim,
        "n_layers": n_layers,
        "max_len": max_len,
        "dropout": dropout,
        "max_epochs": max_epochs,
        "patience": patience,
        "lr": lr,
        "bf16": bf16 or None,
        "length_buckets": length_buckets or None,
    }
    params = {k: v for k, v in given.items() if v is not None}
    try:
        valid_params = student_params(student)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--student") from None
    unknown = sorted(set(params) - set(valid_params))
    if unknown:
        raise typer.BadParameter(f"student {student!r} takes no {unknown}; it takes {valid_params}")
    try:
        STUDENT_PARAMS[student](**params)  # a value out of range names its option (--dim -5)
    except ValidationError as exc:
        raise _bad_parameter(exc) from None
    try:
        settings = StudentConfig(
            name=student, params=params, kd=[m.strip() for m in kd.split(",") if m.strip()]
        )
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"], param_hint="--kd") from None
    dataset_config = _dataset_config(
        dataset,
        min_rating,
        duplicates,
        min_user,
        min_item,
        columns,
        item_columns,
        user_columns,
        timestamp_format,
        user_fraction,
        user_seed,
    )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if transfer:
                teacher, data = _transferred_teacher(teacher, dataset_config, out)
            else:
                data = teacher_data(teacher, dataset_config)
    except DataError:
        raise  # the dataset's own problem, named by file and line
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--teacher") from None
    for warning in caught:
        console.print(f"[yellow]warning:[/] {warning.message}")
    console.print(data.summary())
    console.print(f"student {student} {params}, KD {kd}, seeds {seed_list}")
    run_students(
        data,
        teacher,
        settings,
        seed_list,
        out,
        last_position=last_position,
        baselines_dir=baselines,
        device=_device(device),
    )
    metrics = json.loads((out / "metrics.json").read_text())
    Console().print(
        distill_table(
            metrics,
            title=f"{data.dataset.name}: {student} student, KD {kd} ({data.split.protocol}, full ranking, test)",
        )
    )
    pooled = metrics["comparison"]["pooled"]
    Console().print(
        f"KD - plain NDCG@10 {pooled['mean_diff']:+.4f} (95% bootstrap CI {pooled['diff_ci_low']:+.4f} .. "
        f"{pooled['diff_ci_high']:+.4f}); paired t-test p={pooled['t_pvalue']:.3g}, Wilcoxon p={pooled['wilcoxon_pvalue']:.3g}; "
        f"{pooled['n']:,} test users, per-user NDCG averaged over {len(seed_list)} seed(s)"
    )


def _transferred_teacher(source: Path, dataset_config, out: Path):
    """(OUT/teacher, the target's data): the source teacher carried to the target (reused when OUT/teacher holds
    a finished transfer of the same source), on the split its manifest records."""
    import json

    from distillrec.config import SplitConfig
    from distillrec.manifest import dataset_fingerprint
    from distillrec.stages.data import prepare_data
    from distillrec.stages.teacher import teacher_manifest
    from distillrec.stages.transfer import transfer_teacher

    _, manifest = teacher_manifest(source)
    split = dict(manifest.get("config", {}).get("split", {"protocol": "leave_one_out"}))
    protocol = split.pop("protocol")
    data = prepare_data(dataset_config, SplitConfig(protocol=protocol, params=split))
    folder = out / "teacher"
    done, record = folder / "transfer.json", folder / "manifest.json"
    finished = (
        done.exists()
        and json.loads(done.read_text()).get("source") == str(source)
        and json.loads(record.read_text())["dataset"].get("fingerprint") == dataset_fingerprint(data.dataset)
    )
    if not finished:
        transfer_teacher(source, data, folder, log=console.print)
    return folder, data


def distill_table(metrics: dict, title: str) -> Table:
    table = Table(title=title)
    for col in ("model", "HR@10", "NDCG@10", "95% CI (seeds)", "MRR", "params", "of teacher", "train s"):
        table.add_column(col, justify="left" if col == "model" else "right")
    teacher_params = (metrics.get("teacher") or {}).get("params")
    rows = []
    if metrics.get("teacher"):
        rows.append(("teacher", metrics["teacher"]))
    if metrics.get("best_baseline"):
        rows.append((f"baseline {metrics['best_baseline']['name']}", metrics["best_baseline"]))
    rows += [("student_plain", metrics["student_plain"]), ("student_kd", metrics["student_kd"])]
    for name, row in rows:
        seeds = row.get("test_seeds", {}).get("NDCG@10", {})
        ci = f"[{seeds['ci_low']:.4f}, {seeds['ci_high']:.4f}]" if seeds.get("ci_low") is not None else "-"
        share = f"{row['params'] / teacher_params:.1%}" if teacher_params else "-"
        table.add_row(
            name,
            f"{row['test']['HR@10']:.4f}",
            f"{row['test']['NDCG@10']:.4f}",
            ci,
            f"{row['test']['MRR']:.4f}",
            f"{row['params']:,}",
            share,
            f"{row['train_seconds']:.1f}",
        )
    return table


@app.command()
def multitask(
    dataset: DatasetArg,
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for multitask.json, each model's result and weights (an interrupted command resumes)."
        ),
    ],
    seeds: Annotated[
        str, typer.Option(help="Comma-separated seeds; each trains every student variant.")
    ] = "0,1,2",
    variants: Annotated[
        str,
        typer.Option(
            help="Student variants, comma-separated, 'alone' first: alone (no teacher), kd-ctr and kd-ctcvr "
            "(one task's soft labels; kd-cvr too), kd-soft (both tasks'), kd-multi (both tasks' soft labels and within-user "
            "rankings)."
        ),
    ] = "alone,kd-ctr,kd-ctcvr,kd-soft,kd-multi",
    bottom: Annotated[
        str, typer.Option(help="How the tasks share the input: shared (one MLP) or mmoe.")
    ] = "mmoe",
    weighting: Annotated[
        str,
        typer.Option(
            help="Task weights: fixed (1 and 1), uncertainty (learned, Kendall et al.) or gradnorm (learned to "
            "balance the tasks' gradient norms, after Chen et al.)."
        ),
    ] = "fixed",
    negatives_per_click: Annotated[
        float, typer.Option(help="Unclicked impressions drawn per rated item (the proxy's ratio).")
    ] = 3.0,
    conversion_rating: Annotated[
        float, typer.Option(help="A click converts when its rating is at least this.")
    ] = 4.0,
    impressions: Annotated[
        Path | None,
        typer.Option(
            help="Your own impressions instead of the proxy: a .tsv/.csv/.parquet table with user_id, item_id, "
            "timestamp and the --behaviours columns (0/1), of DATASET's items (whose text the teacher reads)."
        ),
    ] = None,
    behaviours: Annotated[
        str, typer.Option(help="With --impressions: the click and the conversion columns, in funnel order.")
    ] = "click,conversion",
    max_epochs: Annotated[
        int | None, typer.Option(help="Epoch budget of every model (early stopping on validation AUC).")
    ] = None,
    encoder: Annotated[str, typer.Option(help="The teacher's language model: a name or a local folder.")] = (
        "all-MiniLM-L6-v2"
    ),
    columns: Columns = None,
    item_columns: ItemColumns = None,
    timestamp_format: TimestampFormat = "auto",
    device: Device = "cpu",
    progress: Annotated[bool, typer.Option(help="Progress bars.")] = True,
) -> None:
    """Multi-task (CTR/CVR) distillation: impressions with a click and a conversion built from the ratings (a stated
    proxy: click = rated, conversion = rating >= --conversion-rating, unclicked impressions drawn by the popularity
    of their time), a text-aware ESMM teacher, and ESMM students of 5% of its size trained alone and with each
    KD variant. Prints each task's AUC on the latest impressions of every user, conversion NDCG@10 over the
    catalogue, and paired tests against the student alone (GAUC, logloss and every test in OUT/multitask.json)."""
    from distillrec.config import MultiTaskConfig
    from distillrec.stages.multitask import run_multitask

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated integers, got {seeds!r}", param_hint="--seeds"
        ) from None
    if not seed_list:
        raise typer.BadParameter("give at least one seed", param_hint="--seeds")
    shared = {"bottom": bottom, "weighting": weighting}
    if max_epochs is not None:
        shared["max_epochs"] = max_epochs
    try:
        settings = MultiTaskConfig(
            negatives_per_click=negatives_per_click,
            conversion_rating=conversion_rating,
            impressions=None if impressions is None else str(impressions),
            behaviours=[b.strip() for b in behaviours.split(",") if b.strip()],
            encoder=encoder,
            teacher=shared,
            student=shared,
            variants=[v.strip() for v in variants.split(",") if v.strip()],
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        option = {
            "teacher": "--bottom / --weighting / --max-epochs",
            "student": "--bottom / --weighting / --max-epochs",
        }.get(str(error["loc"][0]), "--" + str(error["loc"][0]).replace("_", "-"))
        raise typer.BadParameter(
            str(error.get("ctx", {}).get("error", error["msg"])), param_hint=option
        ) from None
    dataset_config = _dataset_config(
        dataset, None, "first", 0, 0, columns, item_columns, None, timestamp_format
    )
    summary = run_multitask(
        dataset_config, settings, out, seed_list, device=_device(device), progress=progress, log=console.print
    )
    Console().print(multitask_table(summary))
    example = Path(out) / "students" / f"{settings.variants[-1]}-seed{seed_list[0]}" / "model"
    Console().print(
        f"Each student is saved as a model folder, e.g. {example}: "
        f"distillrec recommend {example} --user USER_ID (ranked by the chance of a click and a conversion)"
    )


def multitask_table(summary: dict) -> Table:
    """The teacher and each student variant: every task's AUC, conversion NDCG@10, and p-values against alone."""
    table = Table(
        title=f"{summary['dataset']}: multi-task KD, test impressions (mean over seeds {summary['seeds']})"
    )
    for column in (
        "model",
        "params",
        "CTR AUC",
        "CVR AUC",
        "CTCVR AUC",
        "CTCVR GAUC",
        "conv. NDCG@10",
        "p NDCG",
        "p CVR AUC",
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    rows = [("teacher", summary["teacher"])] + list(summary["students"].items())
    for name, row in rows:
        test = summary["comparisons"].get(f"{name} vs alone", {})
        p = [f"{test[m]['t_pvalue']:.3g}" if m in test else "" for m in ("conversion_NDCG@10", "cvr_AUC")]
        table.add_row(
            name,
            f"{row['params']:,}",
            *(
                f"{row[m]['mean']:.4f}"
                for m in ("ctr_AUC", "cvr_AUC", "ctcvr_AUC", "ctcvr_GAUC", "conversion_NDCG@10")
            ),
            *p,
        )
    return table


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (see configs/).")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key, e.g. --set teacher.dim=64 (repeatable)."),
    ] = None,
    runs_root: Annotated[Path, typer.Option(help="Folder that holds the run folders.")] = Path("runs"),
    run_dir: Annotated[
        Path | None, typer.Option(help="Resume this run folder instead of starting a new one.")
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress bars; only each stage's one-line summary and errors."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also one line per training epoch.")
    ] = False,
    device: Annotated[
        str | None,
        typer.Option(
            help="Where the torch models train (overrides the config's `device`): auto | cpu | cuda[:N] | mps."
        ),
    ] = None,
) -> None:
    """The whole pipeline: data, baselines, teacher, students with and without KD, evaluation, report.

    Stages whose inputs did not change since an earlier run of the same config name are reused.

    The run folder's run.log gets every line (per-epoch lines included), whatever --quiet or --verbose say.

    On several processes: `torchrun --nproc-per-node N -m distillrec run CONFIG` trains every model with
    DistributedDataParallel (gloo on the CPU, nccl on GPUs); rank 0 writes the run folder."""
    from distillrec.config import ConfigError, load_config
    from distillrec.pipeline import run_pipeline
    from distillrec.tracking import MissingExtraError

    if quiet and verbose:
        raise typer.BadParameter("use --quiet or --verbose, not both", param_hint="--quiet")
    from distillrec.train import distributed

    try:
        cfg = load_config(config, [*(set_ or []), *([f"device={device}"] if device else [])])
    except ConfigError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if quiet:
        cfg = cfg.model_copy(update={"progress": False})
    level = "stage" if quiet else "debug" if verbose else "info"
    main, finished = True, False
    try:
        distributed.init_from_env(cfg.device)  # under torchrun: join the other processes
        main = distributed.is_main()
        folder = run_pipeline(cfg, runs_root=runs_root, run_dir=run_dir, log=_log_line, level=level)
        finished = True
    except MissingExtraError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")  # escaped: "[mlflow]" is not markup
        raise typer.Exit(2) from None
    finally:
        distributed.close(finished)
    if main:
        console.print(f"[bold green]done:[/] {folder}/report.html")


def _log_line(message: str) -> None:
    """Print a pipeline message between progress bars (as plain text: "[teacher]" is not rich markup)."""
    from tqdm import tqdm

    with tqdm.external_write_mode(file=sys.stderr):
        console.print(message, markup=False, soft_wrap=True)


@app.command()
def tune(
    config: Annotated[Path, typer.Argument(help="Experiment YAML with a `tune` section (see config.py).")],
    trials: Annotated[
        int | None,
        typer.Option(
            help="Finished trials wanted in total (default: tune.trials); trials already in the study count."
        ),
    ] = None,
    sampler: Annotated[str | None, typer.Option(help="tpe | random | grid (default: tune.sampler).")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key, e.g. --set tune.seed=1 (repeatable)."),
    ] = None,
    runs_root: Annotated[Path, typer.Option(help="Folder that holds the run folders.")] = Path("runs"),
    run_dir: Annotated[
        Path | None,
        typer.Option(help="Study folder (default RUNS_ROOT/<name>-tune); an existing one is resumed."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    device: Annotated[
        str | None,
        typer.Option(
            help="Where the torch models train (overrides the config's `device`): auto | cpu | cuda[:N] | mps."
        ),
    ] = None,
) -> None:
    """Search the config's `tune.space` with Optuna on validation NDCG@10; write best_config.yaml and trials.csv."""
    from distillrec.config import ConfigError, load_config
    from distillrec.tune.search import tune as run_tune

    if sampler is not None and sampler not in ("tpe", "random", "grid"):
        raise typer.BadParameter(
            f"unknown sampler {sampler!r}; choose one of ['grid', 'random', 'tpe']", param_hint="--sampler"
        )
    try:
        cfg = load_config(config, [*(set_ or []), *([f"device={device}"] if device else [])])
        if cfg.tune is None:
            raise ConfigError(f"{config}: no `tune` section; add tune: {{target, space, trials, sampler}}")
        if quiet:
            cfg = cfg.model_copy(update={"progress": False})
        result = run_tune(
            cfg, run_dir or runs_root / f"{cfg.name}-tune", trials=trials, sampler=sampler, log=console.print
        )
    except ConfigError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    console.print(
        f"best validation NDCG@10 {result.best_value:.4f} with {result.best_params} "
        f"({result.n_complete} complete, {result.n_pruned} pruned trials)"
    )
    console.print(
        f"[bold green]done:[/] {result.run_dir / 'best_config.yaml'} (run it with `distillrec run`)"
    )


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `distillrec run`.")],
) -> None:
    """Rebuild RUN_DIR/report.html from RUN_DIR/metrics.json."""
    from distillrec.report.html import build_report

    console.print(f"wrote {build_report(run_dir)}")


@app.command()
def recommend(
    model_dir: Annotated[
        Path,
        typer.Argument(
            help="A saved model folder: runs/<run>/students/<label>/model, runs/<run>/teacher/model, "
            "runs/<run>/baselines/models/<name>, OUT/model of `distillrec distill`, or "
            "OUT/students/<variant>-seed<s>/model of `distillrec multitask`."
        ),
    ],
    user: Annotated[
        str | None, typer.Option(help="A user id known to the model: its history is read.")
    ] = None,
    history: Annotated[
        str | None,
        typer.Option(help="Comma-separated item ids, oldest first (after the user's own items with --user)."),
    ] = None,
    k: Annotated[int, typer.Option(min=1, help="How many items to recommend.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    input_: Annotated[
        Path | None,
        typer.Option(
            "--input",
            help='Batch: a JSON-lines file, one request a line: {"user_id": "196", "history": ["50", "172"], '
            '"k": 10} (user_id or history or both; k defaults to --k).',
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(help='Batch: where the results go, one line a request: {"user_id", "items", "scores"}.'),
    ] = None,
    include_seen: Annotated[
        bool, typer.Option(help="Also recommend items of the history (off: they are never recommended).")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Requests scored together.")] = 256,
) -> None:
    """Top-K items for a user or a history (or a batch of requests) from a saved model; ids are the dataset's own."""
    from distillrec.artifact import ModelFolderError
    from distillrec.recommend import Request, load

    if input_ is None and output is not None:
        raise typer.BadParameter("--output goes with --input (a batch of requests)", param_hint="--output")
    if input_ is not None and (user is not None or history is not None):
        raise typer.BadParameter("give --input, or --user / --history, not both", param_hint="--input")
    if input_ is None and user is None and history is None:
        raise typer.BadParameter("give --user, --history (or both), or --input", param_hint="--user")
    try:
        model = load(model_dir)
    except ModelFolderError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    try:
        if input_ is not None:
            if output is None:
                raise typer.BadParameter("--input needs --output", param_hint="--output")
            requests = read_requests(input_, k)
            results = model.rank(
                requests, exclude_seen=not include_seen, batch_size=batch_size, progress=True
            )
            tmp = output.with_name(output.name + ".partial")
            with open(tmp, "w", encoding="utf-8") as fh:
                for result in results:
                    fh.write(json.dumps(result.to_json()) + "\n")
            tmp.replace(output)
            console.print(f"wrote {len(results):,} result(s) to {output}")
            return
        items = [i.strip() for i in history.split(",") if i.strip()] if history is not None else ()
        (result,) = model.rank([Request(user, tuple(items), k)], exclude_seen=not include_seen)
    except ValueError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if result.unknown_items:
        console.print(
            f"[yellow]warning:[/] skipped item id(s) the model does not know: {result.unknown_items}"
        )
    if result.unknown_user:
        console.print(f"[yellow]warning:[/] user {user!r} is not known to the model")
    if result.cold_start:
        console.print("[yellow]note:[/] no usable history: the most popular items")
    if as_json:
        print(json.dumps(result.to_json()))
        return
    asked = f"user {user}" if user is not None else "this history"
    table = Table(title=f"top {k} for {escape(asked)}", caption=escape(type(model.model).__name__))
    table.add_column("rank", justify="right")
    table.add_column("item")
    table.add_column("score", justify="right")
    for rank, (item, score) in enumerate(result.pairs(), start=1):
        table.add_row(str(rank), escape(item), f"{score:.4f}")
    Console().print(table)


@app.command()
def compress(
    model_dir: Annotated[
        Path, typer.Argument(help="A saved model folder (see `distillrec recommend --help`).")
    ],
    out: Annotated[
        Path, typer.Option(help="Folder for the compressed model (loads and recommends as any other).")
    ],
    method: Annotated[
        str,
        typer.Option(
            help="int8 | int4 | prune | lowrank, or prune / lowrank followed by int8 / int4 (e.g. prune,int8); "
            "or pq (product quantisation of tables of 1,024 rows or more, needs faiss), alone or followed by "
            "int8 / int4 (pq,int8: the codebooks and the layers pq leaves whole quantised too); channels: "
            "structured pruning of whole FFN channels (the --sparsity share), alone or before int8 / int4 / pq."
        ),
    ] = "int8",
    sparsity: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.99,
            help="prune: the fraction of entries set to 0; channels: of FFN channels removed.",
        ),
    ] = 0.5,
    rank: Annotated[int | None, typer.Option(min=1, help="lowrank: the rank (default: by --energy).")] = None,
    energy: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="lowrank: the share of squared singular values to keep.")
    ] = 0.95,
    subvectors: Annotated[
        int | None,
        typer.Option(min=1, help="pq: pieces a row is cut into, one byte each (default: width / 4)."),
    ] = None,
    kd_finetune: Annotated[
        int,
        typer.Option(
            min=0,
            help="Then fine-tune the compressed student this many epochs with its KD objective and compress it "
            "again; prints test NDCG@10 before and after (needs the run's data/ and teacher folders).",
        ),
    ] = 0,
    teacher: Annotated[
        Path | None,
        typer.Option(help="--kd-finetune: the teacher folder (default: the one the model names)."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="--kd-finetune: the prepared data folder (default: data/ of the run holding the model)."
        ),
    ] = None,
    kd: Annotated[
        str | None,
        typer.Option(help="--kd-finetune: the KD methods (default: the ones the model was trained with)."),
    ] = None,
    aware: Annotated[
        bool,
        typer.Option(
            help="--kd-finetune: train on the weights as the method stores them (fake int8/int4 quantisation, "
            "fixed pruning masks, fixed pq codes); --no-aware, or with lowrank or channels: in float32, then "
            "compressed again."
        ),
    ] = True,
    finetune_lr: Annotated[
        float | None,
        typer.Option(
            min=1e-12, help="--kd-finetune: the learning rate (default: a tenth of the model's own)."
        ),
    ] = None,
) -> None:
    """Store a saved model's large arrays smaller (quantised, pruned, low-rank or product-quantised); it loads and
    recommends as before."""
    from distillrec.compress import compress_model
    from distillrec.config import CompressConfig

    if kd_finetune:
        settings = CompressConfig(
            methods=[method],
            sparsity=sparsity,
            rank=rank,
            energy=energy,
            subvectors=subvectors,
            kd_finetune_epochs=kd_finetune,
            kd_finetune_aware=aware,
            kd_finetune_lr=finetune_lr,
        )
        _compress_and_finetune(model_dir, out, method, settings, teacher, data, kd)
        return
    methods = [m.strip() for m in method.split(",") if m.strip()]
    try:
        result = compress_model(
            model_dir, out, methods, sparsity=sparsity, rank=rank, energy=energy, subvectors=subvectors
        )
    except ValueError as exc:
        if any(m in str(exc) for m in ("compression method", "give one", "give it", "channels")):
            raise typer.BadParameter(str(exc), param_hint="--method") from None
        raise
    table = Table(title=f"{escape(str(model_dir))} -> {escape(str(out))} ({', '.join(result.methods)})")
    for column in ("array", "shape", "bytes before", "bytes after", "steps"):
        table.add_column(column, justify="left" if column in ("array", "steps") else "right")
    for array in result.arrays:
        steps = ", ".join(
            s["step"]
            + "".join(f" {k}={v:.3g}" for k, v in s.items() if isinstance(v, float | int) and k != "step")
            for s in array.steps
        )
        table.add_row(
            array.name,
            "x".join(map(str, array.shape)),
            f"{array.bytes_before:,}",
            f"{array.bytes_after:,}",
            steps,
        )
    Console().print(table)
    console.print(
        f"weights {result.weights_bytes_before:,} -> {result.weights_bytes_after:,} bytes ({result.ratio:.2f}x smaller)"
    )


def _compress_and_finetune(model_dir, out, method, settings, teacher, data, kd):
    """`distillrec compress --kd-finetune`: compress, evaluate, fine-tune with KD, compress again, evaluate."""
    import shutil

    from distillrec.artifact import read_model
    from distillrec.losses.spec import TermSpec
    from distillrec.stages.compress import aware_steps, compress_and_evaluate, finetune
    from distillrec.stages.data import read_prepared

    info = read_model(model_dir).info
    objective = info.get("objective") or {}
    teacher = teacher or (Path(objective["teacher"]) if objective.get("teacher") else None)
    if teacher is None or not (teacher / "manifest.json").is_file():
        raise typer.BadParameter(
            f"no teacher folder for {model_dir} (found {teacher}); give --teacher", param_hint="--teacher"
        )
    if data is None:
        data = next(
            (p / "data" for p in model_dir.resolve().parents if (p / "data" / "manifest.json").is_file()),
            None,
        )
        if data is None:
            raise typer.BadParameter(
                f"no run data/ folder above {model_dir}; give --data", param_hint="--data"
            )
    if kd is not None:
        methods = [kd]
    elif objective.get("terms"):
        methods = [
            TermSpec.make(t["method"], **{k: v for k, v in t.items() if k != "method"})
            for t in objective["terms"]
        ]
    else:
        raise typer.BadParameter(f"{model_dir} records no KD objective; give --kd", param_hint="--kd")
    prepared = read_prepared(data)
    first = out.with_name(out.name + ".before-finetune")
    before = compress_and_evaluate(prepared, model_dir, first, method, settings, str(model_dir))
    tuned = finetune(prepared, teacher, methods, first, out.parent, method, settings)
    after = compress_and_evaluate(prepared, tuned, out, method, settings, str(model_dir))
    shutil.rmtree(tuned)
    shutil.rmtree(first)
    tuned_label = f"+ {settings.kd_finetune_epochs} epochs of KD fine-tuning" + (
        " (compression-aware)" if aware_steps(method, settings) else ""
    )
    for label, row in (("compressed", before), (tuned_label, after)):
        console.print(
            f"{label}: {row['smaller_than_source']:.2f}x smaller, test NDCG@10 {row['test']['NDCG@10']:.4f} "
            f"(valid {row['valid']['NDCG@10']:.4f})"
        )
    console.print(f"[bold green]done:[/] {out}")


@app.command()
def export(
    model_dir: Annotated[
        Path, typer.Argument(help="A saved model folder of a sequence model (sasrec, two_tower, teacher).")
    ],
    out: Annotated[
        Path, typer.Option(help="Folder for the exported model (loads and recommends as any other).")
    ],
    format_: Annotated[
        str, typer.Option("--format", help="onnx: the user tower as an ONNX graph, the item table beside it.")
    ] = "onnx",
) -> None:
    """Export a saved model for serving without torch: the user tower to ONNX, the item table as an array."""
    if format_ != "onnx":
        raise typer.BadParameter(f"unknown format {format_!r}; choose onnx", param_hint="--format")
    try:
        from distillrec.export import export_onnx
    except ImportError as exc:
        raise typer.BadParameter(
            f"{exc}; install the extra: pip install -e '.[onnx]'", param_hint="--format"
        ) from None
    folder = export_onnx(model_dir, out)
    console.print(f"[bold green]done:[/] {folder} (`distillrec recommend {folder} --user ...`)")


@app.command()
def serve(
    model_dir: Annotated[
        Path, typer.Argument(help="A saved model folder (see `distillrec recommend --help`).")
    ],
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    db: Annotated[
        str | None,
        typer.Option(
            help="The event store: a SQLite file (default: <MODEL_DIR>.events.sqlite beside the model) or a "
            "postgresql://user:password@host/dbname URL that several server processes share."
        ),
    ] = None,
    teacher: Annotated[
        Path | None,
        typer.Option(
            help="The teacher folder whose text encoder places new items and explains (default: the one the "
            "model was distilled from, or the teacher/ folder of its run)."
        ),
    ] = None,
    use_teacher: Annotated[
        bool,
        typer.Option(
            "--use-teacher/--no-teacher", help="Read the teacher folder's text (titles, new items)."
        ),
    ] = True,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            help="A file holding the API key that write endpoints need (else $DISTILLREC_API_KEY; else a key is "
            "made for this run and printed)."
        ),
    ] = None,
    open_recommend: Annotated[
        bool,
        typer.Option(
            "--open-recommend/--keyed-recommend",
            help="Let /recommend answer without the key (anyone may then ask for any user's list, which tells "
            "what the user has: for public catalogues and demos).",
        ),
    ] = False,
    index: Annotated[
        str,
        typer.Option(
            help="Top-k search: auto (exact below --exact-below items, else faiss HNSW), exact, hnsw."
        ),
    ] = "auto",
    exact_below: Annotated[
        int, typer.Option(min=1, help="Catalogue size from which auto uses HNSW.")
    ] = 200_000,
    threads: Annotated[
        int,
        typer.Option(
            min=1, help="torch threads of the server process (1: requests do not contend for cores)."
        ),
    ] = 1,
) -> None:
    """Serve a saved model over HTTP: recommendations, live feedback, new items by text, explanations, a web page."""
    import secrets

    try:
        import uvicorn

        from distillrec.serve.app import ServeSettings, make_app
        from distillrec.serve.service import Service, build_engine
        from distillrec.serve.store import SQLiteStore, open_store
    except ImportError as exc:
        raise typer.BadParameter(
            f"{exc}; install the extra: pip install -e '.[serve]'", param_hint="MODEL_DIR"
        ) from None
    import torch

    torch.set_num_threads(threads)
    if index not in ("auto", "exact", "hnsw"):
        raise typer.BadParameter(f"unknown index {index!r}; choose auto, exact or hnsw", param_hint="--index")
    if api_key_file is not None:
        key = api_key_file.read_text(encoding="utf-8").strip()
        if not key:
            raise typer.BadParameter(f"{api_key_file} is empty", param_hint="--api-key-file")
        told = f"the key in {api_key_file}"
    elif os.environ.get("DISTILLREC_API_KEY", "").strip():
        key, told = os.environ["DISTILLREC_API_KEY"].strip(), "the key in $DISTILLREC_API_KEY"
    else:
        key = secrets.token_urlsafe(24)
        told = f"a key made for this run: {key}"
    options = {"teacher": teacher, "use_teacher": use_teacher, "index": index, "exact_below": exact_below}
    engine = build_engine(model_dir, **options)
    if engine.can_post_items:
        engine.knowledge.load_encoder()  # now, so the first posted item does not wait for it
    store = open_store(db if db is not None else model_dir.with_name(model_dir.name + ".events.sqlite"))
    service = Service(engine, store)
    settings = ServeSettings(
        api_key=key,
        open_recommend=open_recommend,
        recommend_on_loop=isinstance(store, SQLiteStore),
        engine_options=options,
    )
    text = f"text of {engine.knowledge.folder}" if engine.knowledge else "no teacher text (titles are ids)"
    console.print(
        f"serving {type(engine.model).__name__} from {model_dir}: {len(engine.item_ids):,} items, {text}, "
        f"{engine.index.kind if engine.index else 'model'} top-k, events in {store!r}"
    )
    console.print(f"write endpoints need {told}")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    console.print(f"web page: http://{shown}:{port}/#key=<key>   API docs: http://{shown}:{port}/docs")
    try:
        uvicorn.run(make_app(service, settings), host=host, port=port, log_level="warning", access_log=False)
    finally:
        service.store.close()


def read_requests(path: Path, default_k: int) -> list:
    """The requests of a JSON-lines file; a bad line is an error naming the file, the line and the problem."""
    from distillrec.recommend import Request

    if not path.exists():
        raise typer.BadParameter(f"{path}: no such file", param_hint="--input")
    requests = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f'{where}: expected an object like {{"user_id": ..., "history": [...]}}')
            unknown = sorted(set(row) - {"user_id", "history", "k"})
            if unknown:
                raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys: history, k, user_id")
            user, items, k = row.get("user_id"), row.get("history", []), row.get("k", default_k)
            if user is None and not items:
                raise ValueError(f"{where}: give user_id, history or both")
            if not isinstance(items, list) or not all(isinstance(i, str | int) for i in items):
                raise ValueError(f"{where}: history must be a list of item ids, got {items!r}")
            if not isinstance(k, int) or isinstance(k, bool) or k < 1:
                raise ValueError(f"{where}: k must be a positive integer, got {k!r}")
            requests.append(Request(None if user is None else str(user), tuple(str(i) for i in items), k))
    return requests


def metrics_table(results: dict, title: str) -> Table:
    columns = ["HR@10", "NDCG@10", "MRR", "Recall@20", "NDCG@20"]
    table = Table(title=title)
    table.add_column("model")
    for col in columns:
        table.add_column(col, justify="right")
    table.add_column("params", justify="right")
    table.add_column("train s", justify="right")
    for name, row in results.items():
        table.add_row(
            name,
            *[f"{row['test'][c]:.4f}" for c in columns],
            f"{row['params']:,}",
            f"{row['train_seconds']:.1f}",
        )
    return table


@app.callback()
def _options(
    ctx: typer.Context,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="On an error, show its full traceback, not only its message."),
    ] = False,
) -> None:
    """Distil pretrained language models' knowledge into small, fast recommenders."""
    _SHOW_TRACEBACK["on"] = verbose
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and ctx.invoked_subcommand != "run":
        raise ValueError(
            f"`distillrec {ctx.invoked_subcommand}` runs in one process; under torchrun only `distillrec run` "
            "trains on several (its config says what to train)"
        )


def _device(device: str) -> str:
    """`--device` checked: the name of a device this machine has (auto always is one)."""
    from distillrec.devices import resolve_device

    resolve_device(device)  # a ValueError that says what is wrong
    return device


def main() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()


if __name__ == "__main__":
    main()
