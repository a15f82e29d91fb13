"""Cross-domain transfer: a teacher trained on a source dataset, carried to a target dataset through item text.

Input: a source teacher folder (`distillrec teacher` or a run's `teacher/`, fusion `adapter`) and the target's
`PreparedData`. Output: a teacher folder for the target, in the target's item space, that every KD method reads
as it reads a teacher of the target's own (`distillrec distill TARGET --teacher SOURCE --transfer`):

1. the target's item texts are encoded with the source teacher's encoder (its tuned copy when the source tuned
   one) and template;
2. each target item is placed by its text: its nearest source item by cosine of the text vectors, and how near
   (the mapping quality: how much of the target catalogue resembles something the teacher has seen);
3. the transferred teacher is the source teacher with its item table rebuilt for the target: its sequence
   encoder and its text adapter keep their trained weights; each target item's vector is the adapter's reading
   of its text, plus the ID vector of its nearest source item when their texts are at least `id_match` alike
   (the same item on another platform, found without shared ids); an item with no such match has its text
   alone (a teacher trained with ID vectors, as the default one is, leans on them: text alone recommends
   little);
4. the transferred teacher is tested on the target without any training on it (zero-shot), then exports its
   soft labels, hidden states and item table over the target's training histories (`teachers/export.py`),
   and is saved to `model/`.

The folder's manifest records the target's dataset fingerprint and split, the source teacher's settings, and
`transfer` (the source folder, its dataset, the mapping quality).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from distillrec.artifact import save_model
from distillrec.config import TeacherConfig
from distillrec.manifest import build_manifest
from distillrec.recommend import load
from distillrec.results import write_results
from distillrec.stages.data import PreparedData
from distillrec.stages.teacher import (
    TUNED_ENCODER,
    export_as_configured,
    item_texts,
    manifest_config,
    result_row,
    teacher_manifest,
)
from distillrec.teachers.cache import EmbeddingCache
from distillrec.teachers.llm_enhanced_seq import LLMEnhancedSASRec
from distillrec.teachers.text_encoder import TextEncoder

__all__ = ["transfer_teacher", "nearest_items", "mapping_quality", "SCHEMA_VERSION", "ID_MATCH"]

SCHEMA_VERSION = 1
ID_TABLE = "item_embedding.ids.weight"  # the source items' ID vectors: carried over to text matches only
ID_MATCH = 0.9  # text cosine at which a target item takes its nearest source item's ID vector


def transfer_teacher(
    source: str | Path,
    data: PreparedData,
    out: str | Path,
    progress: bool = True,
    log=print,
    id_match: float = ID_MATCH,
) -> dict:
    """Write the transferred teacher folder (see the module docstring) to `out`; returns its metrics.json rows."""
    source, out = Path(source), Path(out)
    path, manifest = teacher_manifest(source)
    try:
        settings = TeacherConfig(**manifest["config"]["teacher"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: no readable config.teacher to transfer ({exc})") from None
    if settings.fusion != "adapter":
        raise ValueError(
            f"{path}: fusion {settings.fusion!r}; transfer needs fusion 'adapter' (the teacher that reads every "
            "item's text through a trained adapter, so an item it never saw gets a vector from its text)"
        )
    # no text blend is fitted on the target: its export is the transferred teacher's own soft labels
    settings = settings.model_copy(update={"export_blend": False})
    out.mkdir(parents=True, exist_ok=True)
    texts, template = item_texts(data.dataset, settings.template)
    encoder_model = source / TUNED_ENCODER if settings.encoder_tuning_pairs else settings.encoder
    encoder = TextEncoder(str(encoder_model), bf16=settings.encoder_bf16, progress=progress)
    text = EmbeddingCache().encode(encoder, texts, template=template.key)  # (n_target_items, d_text)
    np.save(out / "text_embeddings.npy", text)
    (out / "item_texts.txt").write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n")
    nearest, cosine = nearest_items(text, np.load(source / "text_embeddings.npy"))
    mapping = mapping_quality(cosine)
    mapping.update(id_match=id_match, share_with_source_id=float((cosine >= id_match).mean()))
    log(
        f"target items' nearest source item by text: median cosine {mapping['median_cosine']:.3f}, "
        f"{mapping['share_at_least_0.8']:.1%} at >= 0.8"
    )

    teacher = _carried_over(
        load(source / "model").model, text, data, np.where(cosine >= id_match, nearest, -1)
    )
    split = data.split
    metrics = {
        "teacher": result_row(
            "teacher",
            teacher,
            split,
            0.0,
            top_path=out / "test_top_items.npz",
            bf16=settings.bf16,
            extra={"transfer": {"source": str(source), **mapping}, "best_hparams": teacher.get_params()},
        )
    }
    log(
        f"transferred teacher, no training on the target: test NDCG@10 {metrics['teacher']['test']['NDCG@10']:.4f}"
    )
    info = {
        "stage": "teacher",
        "name": "teacher",
        "transfer_from": str(source),
        "test": metrics["teacher"]["test"],
    }
    save_model(teacher, out / "model", data.catalog(), split.train, info)
    record = build_manifest(
        {
            "teacher": manifest_config(settings),
            "seed": manifest.get("config", {}).get("seed", 0),
            "template": template.key,
            "encoder": encoder.identity,
            "split": {"protocol": split.protocol, **split.params},
            "transfer": {
                "source": str(source),
                "source_dataset": manifest.get("dataset", {}),
                "schema_version": SCHEMA_VERSION,
                **mapping,
            },
        },
        data.dataset,
    )
    export_as_configured(teacher, split.train, out, record, settings, progress)
    write_results(out / "metrics.json", metrics)
    (out / "transfer.json").write_text(json.dumps({"source": str(source), **mapping}, indent=2))
    return metrics


def nearest_items(target: np.ndarray, source: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Each target item's nearest source item by cosine of the text vectors, and that cosine: (n_target,) each."""
    source = _unit(source)
    nearest = np.empty(len(target), dtype=np.int64)
    best = np.empty(len(target), dtype=np.float32)
    for start in range(0, len(target), chunk):
        cosine = _unit(target[start : start + chunk]) @ source.T  # (chunk, n_source)
        nearest[start : start + chunk] = cosine.argmax(axis=1)
        best[start : start + chunk] = cosine.max(axis=1)
    return nearest, best


def mapping_quality(best: np.ndarray) -> dict:
    """The target items' nearest-source cosines summarised: median and the shares at or above 0.9, 0.8, 0.7."""
    summary = {"n_target_items": len(best), "median_cosine": float(np.median(best))}
    for level in (0.9, 0.8, 0.7):
        summary[f"share_at_least_{level}"] = float((best >= level).mean())
    return summary


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _carried_over(
    source: LLMEnhancedSASRec, text: np.ndarray, data: PreparedData, matched: np.ndarray
) -> LLMEnhancedSASRec:
    """The source teacher with the target's item text: every trained weight but the ID table, whose row for a
    target item is the ID vector of its `matched` source item (-1: none, a zero row)."""
    params = {k: v for k, v in source.get_params().items() if k != "checkpoint_dir"}
    teacher = LLMEnhancedSASRec(text, **{**params, "progress": False, "device": "cpu"})
    module = teacher._build_module(data.split.train)
    trained = source.module_.state_dict()
    state = {k: v for k, v in trained.items() if k != ID_TABLE}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if set(missing) != {ID_TABLE} or unexpected:
        raise ValueError(
            f"the source teacher's weights do not fit a teacher over the target's items: missing {missing}, "
            f"unexpected {unexpected}"
        )
    with torch.no_grad():
        table = module.item_embedding.ids.weight  # (n_target + 1, dim); row 0 is padding
        table.zero_()
        found = np.flatnonzero(matched >= 0)
        table[torch.from_numpy(found + 1)] = trained[ID_TABLE][torch.from_numpy(matched[found] + 1)]
    module.eval()
    teacher.module_ = module
    return teacher
