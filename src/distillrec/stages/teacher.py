"""Stage 3, teacher: prepared data -> item texts -> LM embeddings -> trained teacher -> exports + model folder.

Input: `PreparedData` and a `TeacherConfig` (see `config.py`). Output, in `out/`:
`metrics.json` (a results file, `results.py`: models `"teacher"`, `"text_only"` and, when asked,
`"teacher_cold_fallback"`, `"teacher_text_blend"` and `"id_only"`, an ID-only SASRec with the teacher's exact
architecture and budget; each with head/tail/cold slices),
`item_texts.txt` (the rendered text of each item), `text_embeddings.npy`, `tuned_encoder/` (with
`encoder_tuning_pairs`: the encoder tuned on the training histories, `teachers/tuned_encoder.py`, which read the
texts), `teacher.pt` (the teacher's weights),
the exported outputs of `teachers/export.py`, `manifest.json`, and the saved models (`artifact.py`, each loadable
with `distillrec.load`): `model/` (the teacher), `text_only_model/` and, when trained, `id_only_model/`.

Steps: (1) render every item with the template; (2) encode through the content-addressed cache (a second run
encodes nothing); (3) score the text-only model (`centre` picked on validation); (4) train the LLM-enhanced
teacher with early stopping on validation NDCG@10, evaluate it once on the test (and, when asked, with the
cold-start fallback of `models/cold_fallback.py`: row `"teacher_cold_fallback"`; blended with the text-only
model, `models/text_blend.py`: row `"teacher_text_blend"`); (5) export its outputs (with `export_blend`: the
blend's soft labels, `teachers/export.py`) for the distillation loop and write `metrics.json`; (6) when asked,
train the ID-only twin and add its row (the exports are usable before it ends). With `bf16`, training,
validation, the final evaluation and the export run the network under bfloat16 autocast, the scoring head in
float32.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pydantic
import torch

from distillrec.artifact import save_model
from distillrec.config import DatasetConfig, SplitConfig, TeacherConfig
from distillrec.data.dataset import Dataset
from distillrec.data.split import Split, make_split
from distillrec.devices import resolve_device
from distillrec.evaluate.ranking import evaluate
from distillrec.evaluate.slices import slice_summaries
from distillrec.manifest import build_manifest, dataset_fingerprint
from distillrec.models.cold_fallback import ColdStartFallback
from distillrec.models.sasrec import SASRec
from distillrec.models.text_blend import TextBlend
from distillrec.models.text_similarity import TextSimilarity
from distillrec.results import write_results
from distillrec.stages.data import PreparedData, prepare_data
from distillrec.teachers.cache import EmbeddingCache
from distillrec.teachers.export import export_teacher
from distillrec.teachers.llm_enhanced_seq import LATER_OPTIONS as MODEL_LATER_OPTIONS
from distillrec.teachers.llm_enhanced_seq import LLMEnhancedSASRec
from distillrec.teachers.text import ItemTextTemplate, default_template
from distillrec.teachers.text_encoder import TextEncoder
from distillrec.teachers.tuned_encoder import TuningSettings, read_tuning, tune_encoder
from distillrec.train.loop import EpochEnd, bf16_autocast
from distillrec.train.loop import fit_seconds as fit_seconds_of

SCHEMA_VERSION = 1  # of the folder this stage writes (bumped when its files change)
TUNED_ENCODER = "tuned_encoder"  # the encoder tuned for recommendation, when the settings ask for one

# teacher options added after exports existed, with the value the older exports were made with: recorded in the
# manifest only when set otherwise, so re-running an older teacher's command finds its export finished (the
# student runs of `benchmarks/distill.py` are keyed by the manifest's bytes); the model's own later options
# (checked the same way when a checkpoint resumes) plus a training option
LATER_OPTIONS = {
    **MODEL_LATER_OPTIONS,
    "length_buckets": False,
    "negatives": 0,
    "cold_fallback": False,
    "encoder_tuning_pairs": 0,
    "text_blend": False,
    "encoder_tuning_length_sorted": False,
    "export_blend": False,
    "text_blend_drift": False,
}


# options added after `distillrec run` keyed its teacher stage by the whole config: left out of that key at their
# defaults, so a run of an older config still finds its teacher finished
KEY_LATER_OPTIONS = {
    "fusion": "adapter",
    "semantic_dims": 0,
    "train_text": False,
    "encoder_tuning_pairs": 0,
    "negatives": 0,
    "text_blend": False,
    "encoder_tuning_length_sorted": False,
    "export_blend": False,
    "text_blend_drift": False,
}


def key_config(settings: TeacherConfig) -> dict:
    """The teacher config as the pipeline keys the stage by (see `KEY_LATER_OPTIONS`)."""
    return _without_defaults(settings, KEY_LATER_OPTIONS)


def manifest_config(settings: TeacherConfig) -> dict:
    """The teacher config as the export manifest records it (see `LATER_OPTIONS`)."""
    return _without_defaults(settings, LATER_OPTIONS)


def _without_defaults(settings: TeacherConfig, later: dict) -> dict:
    """`settings` as a dict without the `later` options that hold the value they had before they existed."""
    return {k: v for k, v in settings.model_dump().items() if not (k in later and v == later[k])}


def item_texts(dataset: Dataset, template: str | None) -> tuple[list[str], ItemTextTemplate]:
    tmpl = ItemTextTemplate(template) if template else default_template(dataset.item_text.columns)
    tmpl.check_columns(dataset.item_text.columns)
    return tmpl.render_items(dataset.item_text), tmpl


class EncodedItems(NamedTuple):
    texts: list[str]  # each item's rendered text
    vectors: np.ndarray  # (n_items, d_text) its text vector
    template_key: str  # the template that rendered them (`ItemTextTemplate.key`)
    encoder_identity: str  # the encoder that read them (`TextEncoder.identity`)
    seconds: float  # encoding time
    tuning_seconds: float | None = None  # the encoder tuning's time (its folder's record); None: not tuned


def encode_items(
    data: PreparedData,
    settings: TeacherConfig,
    out: Path,
    seed: int = 0,
    progress: bool = True,
    log=print,
    device: str = "cpu",
) -> EncodedItems:
    """Steps (1) and (2) of the module docstring, with the encoder first tuned on `data`'s training histories
    into `out/tuned_encoder` when the settings ask (`encoder_tuning_pairs`). The teacher stage and the tuner both
    encode here."""
    texts, tmpl = item_texts(data.dataset, settings.template)
    encoder_model = settings.encoder
    tuning_seconds = None
    if settings.encoder_tuning_pairs:
        pairs = settings.encoder_tuning_pairs  # and a tenth as many word-dropout views of one item's text
        tuning = TuningSettings(
            pairs=pairs,
            text_views=pairs // 10,
            seed=seed,
            length_sorted=settings.encoder_tuning_length_sorted,
        )
        encoder_model = tune_encoder(
            settings.encoder, texts, data.split.train, out / TUNED_ENCODER, tuning, progress
        )
        tuning_seconds = read_tuning(encoder_model)["seconds"]  # a reused tuning's own time, not 0
        log(f"tuned {settings.encoder} on {tuning.pairs:,} co-occurring item pairs in {tuning_seconds:.0f} s")
    encoder = TextEncoder(
        encoder_model, bf16=settings.encoder_bf16, progress=progress, device=str(resolve_device(device))
    )
    cache = EmbeddingCache()
    start = time.perf_counter()
    text_emb = cache.encode(encoder, texts, template=tmpl.key)
    seconds = time.perf_counter() - start
    log(
        f"encoded {len(texts):,} item texts with {settings.encoder} in {seconds:.1f} s "
        f"({cache.misses:,} computed, {cache.hits:,} from the cache)"
    )
    return EncodedItems(texts, text_emb, tmpl.key, encoder.identity, seconds, tuning_seconds)


def tuned_text_only(text_emb: np.ndarray, split: Split) -> TextSimilarity:
    """The text-only model with its one setting, `centre` (the table's mean vector taken out or not), picked on
    validation NDCG@10 (ties: not centred), as the baselines are tuned."""
    models = [TextSimilarity(text_emb, centre=centre).fit(split.train) for centre in (False, True)]
    scores = [evaluate(model, split.train, split.valid).summary["NDCG@10"] for model in models]
    return models[int(scores[1] > scores[0])]


def result_row(
    kind: str,
    model,
    split: Split,
    fit_seconds: float,
    extra: dict | None = None,
    top_path: Path | None = None,
    bf16: bool = False,
) -> dict:
    with bf16_autocast(bf16):
        valid = evaluate(model, split.train, split.valid)
        test = evaluate(model, split.test_history(), split.test)
    if top_path is not None:  # each test user's top-K list, for teacher-student agreement
        np.savez(top_path, users=test.users, top_items=test.top_items)
    row = {
        "kind": kind,  # how the report lists it: "teacher", "text_only" or "baseline"
        "valid": valid.summary,
        "test": test.summary,
        "params": model.n_params(),
        "train_seconds": round(fit_seconds, 3),
        "slices": slice_summaries(test, split.test, split.train),
    }
    row.update(extra or {})
    return row


def _model_params(settings: TeacherConfig, seed: int, progress: bool, device: str) -> dict:
    keys = (
        "dim",
        "n_layers",
        "n_heads",
        "max_len",
        "dropout",
        "max_epochs",
        "batch_size",
        "lr",
        "patience",
        "bf16",
        "length_buckets",
        "negatives",
    )
    settings_params = {k: getattr(settings, k) for k in keys}
    return {**settings_params, "seed": seed, "progress": progress, "device": device}


def teacher_manifest(folder: str | Path) -> tuple[Path, dict]:
    """(path, content) of a teacher folder's manifest; errors name the file."""
    path = Path(folder) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no teacher manifest (a folder written by `distillrec teacher`)")
    try:
        return path, json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def teacher_data(folder: str | Path, dataset: DatasetConfig) -> PreparedData:
    """The data a teacher folder was built on: `dataset` prepared and split as the folder's manifest records
    (leave-one-out when it records none); an error naming the manifest when `dataset` is other data (another
    fingerprint), a warning when the manifest has no fingerprint to compare."""
    path, manifest = teacher_manifest(folder)
    split = dict(manifest.get("config", {}).get("split", {"protocol": "leave_one_out"}))
    protocol = split.pop("protocol")
    data = prepare_data(dataset, SplitConfig(protocol=protocol, params=split))
    expected = manifest.get("dataset", {}).get("fingerprint")
    if expected is None:
        warnings.warn(f"{path} has no dataset fingerprint; only sizes are checked", stacklevel=2)
    elif expected != dataset_fingerprint(data.dataset):
        raise ValueError(
            f"{path}: the teacher was built on other data than {dataset.source} with these filters "
            "(dataset fingerprints differ)"
        )
    return data


def read_teacher_folder(folder: str | Path, dataset: Dataset) -> tuple[TeacherConfig, Split, int]:
    """The settings, split and seed that the `manifest.json` of a teacher folder records, the split made
    again from `dataset`, which must be the data the teacher was built on (same fingerprint)."""
    path, manifest = teacher_manifest(folder)
    try:
        config, built_on = manifest["config"], manifest["dataset"]["fingerprint"]
        teacher_config, split_config, seed = config["teacher"], dict(config["split"]), int(config["seed"])
        protocol = split_config.pop("protocol")
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: no {exc} in it; a teacher manifest has config.teacher, config.split (with its protocol), "
            "config.seed and dataset.fingerprint"
        ) from None
    try:
        settings = TeacherConfig(**teacher_config)
    except pydantic.ValidationError as exc:
        raise ValueError(
            f"{path}: its config.teacher does not fit this version's TeacherConfig (a folder written by an "
            f"older distillrec?):\n{exc}"
        ) from None
    fingerprint = dataset_fingerprint(dataset)
    if fingerprint != built_on:
        raise ValueError(
            f"{path}: built on data with fingerprint {built_on}, but {dataset.name} has {fingerprint}"
        )
    return settings, make_split(dataset.interactions, protocol, **split_config), seed


def make_teacher_model(
    text_emb: np.ndarray,
    settings: TeacherConfig,
    out: str | Path | None,
    seed: int = 0,
    progress: bool = True,
    device: str = "cpu",
) -> LLMEnhancedSASRec:
    """The unfitted teacher of `settings`, the one place a `TeacherConfig` becomes a model (the stage, the tuner
    and the scripts all build it here). With `out`, it checkpoints into `out/checkpoints/teacher`: fitting it on a
    folder whose teacher finished training trains nothing and restores the best epoch."""
    return LLMEnhancedSASRec(
        text_emb,
        adapter_hidden=settings.adapter_hidden,
        id_init=settings.id_init,
        softmax_over_trained=settings.softmax_over_trained,
        id_dropout=settings.id_dropout,
        fusion=settings.fusion,
        semantic_dims=settings.semantic_dims,
        train_text=settings.train_text,
        checkpoint_dir=None if out is None else Path(out) / "checkpoints" / "teacher",
        **_model_params(settings, seed, progress, device),
    )


def build_teacher(
    data: PreparedData,
    out: str | Path,
    settings: TeacherConfig,
    seed: int = 0,
    progress: bool = True,
    log=print,
    on_epoch: Callable[[dict, EpochEnd], None] | None = None,
    device: str = "cpu",
) -> dict:
    """See the module docstring; `on_epoch(labels, end)` is called after every training epoch, with labels
    `{"model": "teacher"}` (or `"id_only"`)."""

    def callbacks(model: str) -> list:
        return [partial(on_epoch, {"model": model})] if on_epoch else []

    split, catalog = data.split, data.catalog()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    encoded = encode_items(data, settings, out, seed, progress, log, device)
    text_emb = encoded.vectors
    (out / "item_texts.txt").write_text("\n".join(t.replace("\n", " ") for t in encoded.texts) + "\n")
    np.save(out / "text_embeddings.npy", text_emb)

    metrics: dict = {}
    text_only = tuned_text_only(text_emb, split)
    metrics["text_only"] = result_row(
        "text_only",
        text_only,
        split,
        0.0,
        {"best_hparams": text_only.get_params() | {"text_embeddings": "LM"}},
    )
    log(f"text-only: test NDCG@10 {metrics['text_only']['test']['NDCG@10']:.4f}")
    info = {"stage": "teacher", "name": "text_only", "test": metrics["text_only"]["test"]}
    save_model(text_only, out / "text_only_model", catalog, split.train, info)

    teacher = make_teacher_model(text_emb, settings, out, seed, progress, device)
    start = time.perf_counter()
    teacher.fit(split.train, split.valid, callbacks=callbacks("teacher"))
    fit_seconds = fit_seconds_of(teacher, time.perf_counter() - start)
    hp = teacher.get_params()
    hp.pop("checkpoint_dir", None)
    metrics["teacher"] = result_row(
        "teacher",
        teacher,
        split,
        fit_seconds,
        top_path=out / "test_top_items.npz",
        bf16=settings.bf16,
        extra={
            "best_hparams": hp,
            "encoder_seconds": round(encoded.seconds, 3),
            "encoder_tuning_seconds": encoded.tuning_seconds,
            "encoder": encoded.encoder_identity,
            "best_epoch": teacher.fit_result_.best_epoch,
            "history": teacher.history_,
        },
    )
    log(
        f"teacher: test NDCG@10 {metrics['teacher']['test']['NDCG@10']:.4f} "
        f"({teacher.n_params():,} params, {fit_seconds:.0f} s)"
    )
    torch.save(teacher.module_.state_dict(), out / "teacher.pt")
    info = {
        "stage": "teacher",
        "name": "teacher",
        "seed": seed,
        "test": metrics["teacher"]["test"],
        "evaluated_in_bf16": settings.bf16,  # `recommend` scores it the same way
    }
    save_model(teacher, out / "model", catalog, split.train, info)
    if settings.cold_fallback:
        start = time.perf_counter()
        with bf16_autocast(settings.bf16):
            fallback = ColdStartFallback(teacher, text_emb).fit(split.train, split.valid)
        metrics["teacher_cold_fallback"] = result_row(
            "teacher",
            fallback,
            split,
            fit_seconds,
            bf16=settings.bf16,
            extra={
                "shift": str(fallback.shift_),  # "-inf": off, the teacher alone
                "validation_ndcg_by_shift": {str(k): v for k, v in fallback.validation_ndcg_.items()},
                "fallback_seconds": round(time.perf_counter() - start, 3),
            },
        )
        cold = metrics["teacher_cold_fallback"]["slices"].get("cold", {}).get("NDCG@10")
        log(
            f"teacher + cold-start fallback (shift {fallback.shift_}): test NDCG@10 "
            f"{metrics['teacher_cold_fallback']['test']['NDCG@10']:.4f}, cold targets {cold}"
        )
    blend = None
    if settings.text_blend:
        start = time.perf_counter()
        with bf16_autocast(settings.bf16):
            blend = TextBlend(teacher, text_only, drift=settings.text_blend_drift).fit(
                split.train, split.valid
            )
        metrics["teacher_text_blend"] = result_row(
            "teacher",
            blend,
            split,
            fit_seconds,
            bf16=settings.bf16,
            extra={
                "weight": blend.weight_,
                "validation_by_weight": {str(k): v for k, v in blend.validation_.items()},
                "validation_weighted_by_drift": settings.text_blend_drift,  # the weights' means are weighted
                "blend_seconds": round(time.perf_counter() - start, 3),
            },
        )
        log(
            f"teacher + text blend (weight {blend.weight_}): test NDCG@10 "
            f"{metrics['teacher_text_blend']['test']['NDCG@10']:.4f}"
        )

    manifest = build_manifest(
        {
            "teacher": manifest_config(settings),
            "seed": seed,
            "template": encoded.template_key,
            "encoder": encoded.encoder_identity,
            "split": {"protocol": split.protocol, **split.params},
        },
        data.dataset,
    )
    export_as_configured(teacher, split.train, out, manifest, settings, progress, blend)
    write_results(out / "metrics.json", metrics)

    if settings.compare_id_only:
        metrics["id_only"] = build_id_only_twin(data, out, settings, seed, progress, log, on_epoch, device)
        write_results(out / "metrics.json", metrics)
    return metrics


def export_as_configured(
    teacher,
    train,
    out: Path,
    manifest: dict,
    settings: TeacherConfig,
    progress: bool = True,
    blend: TextBlend | None = None,
) -> Path:
    """`export_teacher` with the export settings of `settings` (top-K, hidden states, seen items, bf16, and
    with `export_blend` the soft labels of `blend`, the teacher's fitted `TextBlend`)."""
    if settings.export_blend and blend is None:
        raise ValueError("export_blend: no fitted text blend of this teacher was given to export")
    return export_teacher(
        teacher,
        train,
        out,
        manifest,
        top_k=settings.top_k,
        position_hidden=settings.position_hidden,
        progress=progress,
        exclude_seen=settings.exclude_seen,
        bf16=settings.bf16,
        blend=blend if settings.export_blend else None,
    )


def build_id_only_twin(
    data: PreparedData,
    out: str | Path,
    settings: TeacherConfig,
    seed: int = 0,
    progress: bool = True,
    log=print,
    on_epoch: Callable[[dict, EpochEnd], None] | None = None,
    device: str = "cpu",
) -> dict:
    """Train and evaluate the teacher's ID-only twin: a `SASRec` with the teacher's architecture and training
    settings (`settings`), without the text. Returns its `metrics.json` row (checkpoints in
    `out/checkpoints/id_only`, so an interrupted twin resumes) and saves it to `out/id_only_model`."""
    split = data.split
    plain = SASRec(
        checkpoint_dir=Path(out) / "checkpoints" / "id_only",
        **_model_params(settings, seed, progress, device),
    )
    start = time.perf_counter()
    plain.fit(
        split.train, split.valid, callbacks=[partial(on_epoch, {"model": "id_only"})] if on_epoch else []
    )
    row = result_row(
        "baseline",
        plain,
        split,
        fit_seconds_of(plain, time.perf_counter() - start),
        {
            "best_hparams": {k: v for k, v in plain.get_params().items() if k != "checkpoint_dir"},
            "best_epoch": plain.fit_result_.best_epoch,
            "history": plain.history_,
        },
        bf16=settings.bf16,
    )
    log(f"id-only SASRec (same budget): test NDCG@10 {row['test']['NDCG@10']:.4f}")
    info = {
        "stage": "teacher",
        "name": "id_only",
        "seed": seed,
        "test": row["test"],
        "evaluated_in_bf16": settings.bf16,
    }
    save_model(plain, Path(out) / "id_only_model", data.catalog(), split.train, info)
    return row
