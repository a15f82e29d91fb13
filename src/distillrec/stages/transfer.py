"""Cross-domain transfer: a teacher trained on a source dataset, carried to a target dataset through item text.

Input: a source teacher folder (`distillrec teacher` or a run's `teacher/`, fusion `adapter`) and the target's
`PreparedData`. Output: a teacher folder for the target, in the target's item space, that every KD method reads
as it reads a teacher of the target's own (`distillrec distill TARGET --teacher SOURCE --transfer`):

1. the target's item texts are encoded with the source teacher's encoder (its tuned copy when the source tuned
   one) and template;
2. the transferred teacher is the source teacher with its item table rebuilt from that text: its sequence
   encoder and its text adapter keep their trained weights, and each target item's vector is the adapter's
   reading of its text alone (the source's ID vectors belong to source items and are dropped: no shared ids are
   needed);
3. mapping quality: for each target item, the cosine similarity of its text vector to the nearest source item's
   (how much of the target catalogue resembles something the teacher has seen);
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

__all__ = ["transfer_teacher", "mapping_quality", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
ID_TABLE = "item_embedding.ids.weight"  # the source items' ID vectors: not carried over


def transfer_teacher(
    source: str | Path, data: PreparedData, out: str | Path, progress: bool = True, log=print
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
    out.mkdir(parents=True, exist_ok=True)
    texts, template = item_texts(data.dataset, settings.template)
    encoder_model = source / TUNED_ENCODER if settings.encoder_tuning_pairs else settings.encoder
    encoder = TextEncoder(str(encoder_model), bf16=settings.encoder_bf16, progress=progress)
    text = EmbeddingCache().encode(encoder, texts, template=template.key)  # (n_target_items, d_text)
    np.save(out / "text_embeddings.npy", text)
    (out / "item_texts.txt").write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n")
    mapping = mapping_quality(text, np.load(source / "text_embeddings.npy"))
    log(
        f"target items' nearest source item by text: median cosine {mapping['median_cosine']:.3f}, "
        f"{mapping['share_at_least_0.8']:.1%} at >= 0.8"
    )

    teacher = _carried_over(load(source / "model").model, text, data)
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


def mapping_quality(target: np.ndarray, source: np.ndarray, chunk: int = 2048) -> dict:
    """Each target item's highest cosine similarity to a source item's text vector, summarised: median and the
    shares at or above 0.9, 0.8 and 0.7."""
    source = _unit(source)
    best = np.empty(len(target), dtype=np.float32)
    for start in range(0, len(target), chunk):
        best[start : start + chunk] = (_unit(target[start : start + chunk]) @ source.T).max(axis=1)
    summary = {"n_target_items": len(target), "median_cosine": float(np.median(best))}
    for level in (0.9, 0.8, 0.7):
        summary[f"share_at_least_{level}"] = float((best >= level).mean())
    return summary


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _carried_over(source: LLMEnhancedSASRec, text: np.ndarray, data: PreparedData) -> LLMEnhancedSASRec:
    """The source teacher with the target's item text: every trained weight but the source items' ID vectors,
    whose table is zero here (so the model folder, loaded again, scores exactly as this model does)."""
    params = {k: v for k, v in source.get_params().items() if k != "checkpoint_dir"}
    teacher = LLMEnhancedSASRec(text, **{**params, "progress": False, "device": "cpu"})
    module = teacher._build_module(data.split.train)
    state = {k: v for k, v in source.module_.state_dict().items() if k != ID_TABLE}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if set(missing) != {ID_TABLE} or unexpected:
        raise ValueError(
            f"the source teacher's weights do not fit a teacher over the target's items: missing {missing}, "
            f"unexpected {unexpected}"
        )
    with torch.no_grad():
        module.item_embedding.ids.weight.zero_()
    module.eval()
    teacher.module_ = module
    return teacher
