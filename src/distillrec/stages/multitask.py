"""The multi-task (CTR/CVR) comparison: does a text-aware teacher that predicts clicks and conversions make a
small student better at both?

Input: a dataset with ratings (`DatasetConfig`) and a `MultiTaskConfig`. Steps:

1. the ratings become impressions with a click and a conversion (`data/impressions.from_ratings`: a stated
   proxy; see its docstring), or the user's own impressions are read (`settings.impressions`,
   `read_impressions`); they are split by time per user (`split_by_time`);
2. the items' text is encoded with the teacher's language model (through the embedding cache); a user's text
   profile is the mean vector of the items they clicked in training, before the impression's time for a
   training impression (`multitask/profiles.py`: its own click never enters it);
3. the teacher (ESMM with text, `TEACHER_DEFAULTS`) trains once, with the first seed; its two logits of every
   training impression are kept (`teacher/logits.npz`): the soft labels and rankings the students read;
4. for each seed and each variant (`KD_VARIANTS`: alone, single-task KD per task, both tasks' soft labels, and
   both tasks' soft labels and within-user rankings) a student ESMM (ids only, `STUDENT_DEFAULTS`) trains;
5. every model is tested on the held-out impressions: each task's AUC, GAUC and logloss, and the conversion
   ranking (NDCG@10 over the whole catalogue by pCTCVR); each variant is compared with `alone`, and the
   multi-task variants with the single-task ones, by paired tests over test users (each user's metric averaged
   over the seeds): conversion NDCG@10 and each task's per-user AUC.

Output folder: `settings.json` (the dataset and settings the models were trained with: another run in
the same folder must match), `impressions.json` (what the proxy built), `teacher/` and `students/<variant>-seed<s>/` (each
`state.pt`, `result.json`, `per_user.npz`; a model in training checkpoints in its `checkpoint/`; a student's
`model/` is its model folder, which `distillrec.load` reads and `distillrec serve` serves, ranking a known user's
catalogue by pCTCVR: `multitask/served.py`), and
`multitask.json`, the summary. An interrupted run resumes: finished models are read back, the model in
training continues from its last epoch.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distillrec.artifact import Catalog, save_model
from distillrec.config import DatasetConfig, MultiTaskConfig
from distillrec.data.impressions import Impressions, concat, from_ratings, read_impressions, split_by_time
from distillrec.evaluate.significance import paired_test, seed_summary
from distillrec.manifest import build_manifest
from distillrec.multitask.params import KD_VARIANTS, STUDENT_DEFAULTS, TEACHER_DEFAULTS, params_from
from distillrec.multitask.profiles import ClickProfiles
from distillrec.multitask.served import MultiTaskStudent
from distillrec.multitask.train import (
    conversion_ranking,
    evaluate_tasks,
    fit_multitask,
    labels_of,
    make_model,
    positive_interactions,
    predict_logits,
)
from distillrec.stages.data import read_dataset
from distillrec.stages.teacher import item_texts
from distillrec.teachers.cache import EmbeddingCache
from distillrec.teachers.text_encoder import TextEncoder

__all__ = [
    "run_multitask",
    "build_impressions",
    "SUMMARY",
    "COMPARED",
    "SCHEMA_VERSION",
]

SCHEMA_VERSION = 2  # 2: training impressions read the user profile before their time
# settings a finished model may have been trained with otherwise and still be read back
RESUMABLE = {"device", "progress"}

SUMMARY = "multitask.json"
# per-user metrics every comparison tests: conversion NDCG@10 and each task's AUC within a user
COMPARED = ("conversion_NDCG@10", "ctr_AUC", "cvr_AUC", "ctcvr_AUC")
# the summary's metrics, each a mean over seeds with its interval
HEADLINE = (
    ("ctr", "AUC"),
    ("ctr", "GAUC"),
    ("ctr", "logloss"),
    ("cvr", "AUC"),
    ("cvr", "GAUC"),
    ("cvr", "logloss"),
    ("ctcvr", "AUC"),
    ("ctcvr", "GAUC"),
    ("ctcvr", "logloss"),
)


def build_impressions(dataset_config: DatasetConfig, settings: MultiTaskConfig):
    """(dataset, user ids, (train, valid, test) impressions) of a dataset with ratings, or of the user's own
    impressions over the dataset's items (whose users are their own: `user ids` holds the id of each user index);
    an error says what is missing."""
    dataset = read_dataset(dataset_config)
    if settings.impressions is not None:
        impressions, user_ids = read_impressions(
            settings.impressions, dataset.item_ids, settings.behaviours, dataset_config.timestamp_format
        )
        return dataset, user_ids, split_by_time(impressions, settings.valid_share, settings.test_share)
    if dataset_config.min_rating is not None and dataset_config.min_rating >= settings.conversion_rating:
        raise ValueError(
            f"dataset.min_rating {dataset_config.min_rating} keeps only ratings that convert (conversion_rating "
            f"{settings.conversion_rating}): every click would convert; lower dataset.min_rating or raise "
            "conversion_rating"
        )
    if dataset.ratings is None:
        raise ValueError(
            f"{dataset_config.source}: multi-task data is built from ratings (click = rated, conversion = "
            f"rating >= {settings.conversion_rating}), and this dataset has no rating column; a table of your own "
            "impressions comes with --impressions"
        )
    inter = dataset.interactions
    impressions = from_ratings(
        inter.users,
        inter.items,
        inter.timestamps,
        dataset.ratings,
        inter.n_users,
        inter.n_items,
        negatives_per_click=settings.negatives_per_click,
        conversion_rating=settings.conversion_rating,
        seed=settings.impression_seed,
    )
    return dataset, dataset.user_ids, split_by_time(impressions, settings.valid_share, settings.test_share)


def _describe(parts: dict[str, Impressions]) -> dict:
    out = {}
    for name, part in parts.items():
        click, ctcvr = labels_of(part)
        out[name] = {
            "impressions": len(part),
            "clicks": int(click.sum()),
            "conversions": int(ctcvr.sum()),
            "users": int(len(np.unique(part.users))),
        }
    return out


def _train_and_test(
    folder: Path, model, params, train, valid, test, teacher_logits=None, log=print, profiles=None
) -> dict[str, Any]:
    """Train (or read back) one model in `folder`; its result (also in `folder/result.json`). A finished model
    trained with other settings is an error naming the folder and the settings that differ."""
    result_path = folder / "result.json"
    if result_path.exists():
        result = json.loads(result_path.read_text(encoding="utf-8"))
        wanted = params.model_dump(mode="json", exclude=RESUMABLE)
        found = {k: v for k, v in result["hparams"].items() if k not in RESUMABLE}
        if found != wanted:
            differ = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            raise ValueError(
                f"{folder} holds a model trained with other settings ({differ}); give another folder"
            )
        # trained on another device (a GPU) and read back here: the weights load onto the model's own device
        model.load_state_dict(torch.load(folder / "state.pt", map_location="cpu", weights_only=True))
        return result
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    fit = fit_multitask(
        model, train, valid, params, teacher_logits, checkpoint_dir=folder / "checkpoint", profiles=profiles
    )
    seconds = fit.total_seconds if fit.history else time.perf_counter() - started
    tasks, per_user = evaluate_tasks(model, test)
    ranking = conversion_ranking(model, concat([train, valid]), test)
    arrays = {"conversion_users": ranking.users, "conversion_NDCG@10": ranking.per_user["NDCG@10"]}
    for task, (users, values) in per_user.items():
        arrays[f"{task}_users"], arrays[f"{task}_AUC"] = users, values
    np.savez(folder / "per_user.npz", **arrays)
    torch.save(model.state_dict(), folder / "state.pt")
    result = {
        "tasks": tasks,
        "conversion_ranking": ranking.summary,
        "params": model.n_params(),
        "train_seconds": round(seconds, 3),
        "best_epoch": fit.best_epoch,
        "epochs": len(fit.history),
        "valid_score": fit.best_score,  # mean of the click AUC and the click-and-conversion AUC on validation
        "hparams": params.model_dump(mode="json"),
    }
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2), encoding="utf-8")
    tmp.replace(result_path)
    log(
        f"{folder.name}: ctr AUC {tasks['ctr']['AUC']:.4f}, cvr AUC {tasks['cvr']['AUC']:.4f}, "
        f"ctcvr AUC {tasks['ctcvr']['AUC']:.4f}, conversion NDCG@10 {ranking.summary['NDCG@10']:.4f} "
        f"({len(fit.history)} epochs, {seconds:.0f} s)"
    )
    return result


def _save_student(
    folder: Path, model, params, catalog: Catalog, trained_on, variant: str, result: dict
) -> None:
    """The student as a model folder `distillrec.load` reads (`multitask/served.py`: it ranks by pCTCVR)."""
    info = {
        "label": f"multitask student {variant}",
        "seed": params.seed,
        "kd": list(params.kd),
        "metrics": {
            "conversion_NDCG@10": result["conversion_ranking"]["NDCG@10"],
            **{f"{task}_AUC": result["tasks"][task]["AUC"] for task in ("ctr", "cvr", "ctcvr")},
        },
    }
    save_model(MultiTaskStudent.from_trained(model, params), folder, catalog, trained_on, info)


def _per_user(folder: Path) -> dict[str, dict[int, float]]:
    with np.load(folder / "per_user.npz") as data:
        out = {
            "conversion_NDCG@10": dict(zip(data["conversion_users"], data["conversion_NDCG@10"], strict=True))
        }
        for task in ("ctr", "cvr", "ctcvr"):
            out[f"{task}_AUC"] = dict(zip(data[f"{task}_users"], data[f"{task}_AUC"], strict=True))
    return out


def _seed_averaged(per_seed: list[dict], metric: str) -> dict[int, float]:
    """Each user's metric averaged over the seeds' models (users present in every seed); `per_seed`: each seed's
    `_per_user` tables."""
    tables = [seed[metric] for seed in per_seed]
    users = set(tables[0]).intersection(*tables[1:])
    return {u: float(np.mean([t[u] for t in tables])) for u in users}


def _compare(a: list[Path], b: list[Path]) -> dict[str, dict]:
    out = {}
    a_tables, b_tables = [_per_user(f) for f in a], [_per_user(f) for f in b]  # each file read once
    for metric in COMPARED:
        left, right = _seed_averaged(a_tables, metric), _seed_averaged(b_tables, metric)
        users = sorted(set(left) & set(right))
        out[metric] = paired_test([left[u] for u in users], [right[u] for u in users]).to_json()
    return out


def _summary(results: list[dict]) -> dict:
    out = {
        f"{task}_{metric}": seed_summary([r["tasks"][task][metric] for r in results])
        for task, metric in HEADLINE
    }
    for metric in ("NDCG@10", "HR@10", "Recall@10"):
        out[f"conversion_{metric}"] = seed_summary([r["conversion_ranking"][metric] for r in results])
    out["params"] = results[0]["params"]
    out["train_seconds"] = float(np.mean([r["train_seconds"] for r in results]))
    out["epochs"] = [r["epochs"] for r in results]
    return out


def _digest(parts: list[Impressions]) -> str:
    """A digest of the impressions themselves (a changed file at the same path changes it)."""
    digest = hashlib.sha256()
    for part in parts:
        for array in (part.users, part.items, part.timestamps, *part.labels.values()):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _flat(record: dict) -> dict:
    """{"a": {"b": 1}, "c": 2} -> {"a.b": 1, "c": 2}."""
    out = {}
    for key, value in record.items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        out.update({key if sub is None else f"{key}.{sub}": inner for sub, inner in items})
    return out


def _check_settings(
    path: Path, dataset_config: DatasetConfig, settings: MultiTaskConfig, digest: str
) -> None:
    """A folder holds the models of one set of settings and impressions: an error naming what differs when
    `path` records others (the variants and seeds may grow: they add models beside the finished ones)."""
    wanted = {
        "dataset": dataset_config.model_dump(),
        "multitask": settings.model_dump(exclude={"variants"}),
        "impressions_sha256": digest,
    }
    wanted = json.loads(json.dumps(wanted))  # tuples as lists, as read back
    if path.exists():
        found = json.loads(path.read_text(encoding="utf-8"))
        if found != wanted:
            old, new = _flat(found), _flat(wanted)
            differ = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
            raise ValueError(
                f"{path.parent} holds a multi-task run with other settings or data ({', '.join(differ)} differ); "
                "give another folder"
            )
        return
    path.write_text(json.dumps(wanted, indent=2), encoding="utf-8")


def run_multitask(
    dataset_config: DatasetConfig,
    settings: MultiTaskConfig,
    out: str | Path,
    seeds: list[int],
    device: str = "cpu",
    progress: bool = True,
    log=print,
) -> dict:
    """The comparison of the module docstring in `out`; returns the summary (also `out/multitask.json`)."""
    if not seeds:
        raise ValueError("run_multitask needs at least one seed")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset, user_ids, (train, valid, test) = build_impressions(dataset_config, settings)
    _check_settings(out / "settings.json", dataset_config, settings, _digest([train, valid, test]))
    described = _describe({"train": train, "valid": valid, "test": test})
    (out / "impressions.json").write_text(json.dumps(described, indent=2), encoding="utf-8")
    log(
        f"{dataset.name}: {len(train):,} training impressions ({described['train']['clicks']:,} clicks, "
        f"{described['train']['conversions']:,} conversions), {len(valid):,} validation, {len(test):,} test"
    )
    texts, template = item_texts(dataset, settings.template)
    encoder = TextEncoder(settings.encoder, progress=progress)
    item_vectors = EmbeddingCache().encode(encoder, texts, template=template.key)
    profiles = ClickProfiles(train, item_vectors, labels_of(train)[0])
    run = {"progress": progress, "device": device}

    teacher_params = params_from(TEACHER_DEFAULTS, settings.teacher, run, {"seed": seeds[0], "kd": ()})
    teacher = make_model(train.n_users, train.n_items, teacher_params, item_vectors, profiles.final())
    teacher_result = _train_and_test(
        out / "teacher", teacher, teacher_params, train, valid, test, log=log, profiles=profiles
    )
    logits_path = out / "teacher" / "logits.npz"
    if not logits_path.exists():  # each training impression as the teacher saw it in training
        ctr_logit, cvr_logit = predict_logits(teacher, train.users, train.items, train.timestamps, profiles)
        np.savez(logits_path, ctr=ctr_logit, cvr=cvr_logit)
    with np.load(logits_path) as saved:
        teacher_logits = (saved["ctr"], saved["cvr"])

    # what a saved student serves: each user's clicks in training and validation, in time order
    seen = concat([train, valid])
    catalog = Catalog(user_ids, dataset.item_ids, positive_interactions(seen, labels_of(seen)[0]))
    trained_on = positive_interactions(train, labels_of(train)[0])
    folders: dict[str, list[Path]] = {}
    results: dict[str, list[dict]] = {}
    for variant in settings.variants:
        for seed in seeds:
            params = params_from(
                STUDENT_DEFAULTS, settings.student, run, {"seed": seed, "kd": KD_VARIANTS[variant]}
            )
            student = make_model(train.n_users, train.n_items, params)
            folder = out / "students" / f"{variant}-seed{seed}"
            result = _train_and_test(folder, student, params, train, valid, test, teacher_logits, log=log)
            if not (folder / "model").exists():
                _save_student(folder / "model", student, params, catalog, trained_on, variant, result)
            folders.setdefault(variant, []).append(folder)
            results.setdefault(variant, []).append(result)

    comparisons = {f"{v} vs alone": _compare(folders[v], folders["alone"]) for v in settings.variants[1:]}
    for multi in ("kd-soft", "kd-multi"):
        for single in ("kd-ctr", "kd-ctcvr"):
            if multi in folders and single in folders:
                comparisons[f"{multi} vs {single}"] = _compare(folders[multi], folders[single])
    summary = {
        "dataset": dataset.name,
        "seeds": seeds,
        "impressions": described,
        "teacher": {**_summary([teacher_result]), "hparams": teacher_result["hparams"]},
        "students": {variant: _summary(rows) for variant, rows in results.items()},
        "kd_terms": {variant: list(KD_VARIANTS[variant]) for variant in settings.variants},
        "comparisons": comparisons,
        "unit": "paired tests over test users; each user's metric averaged over the seeds of each variant",
        "manifest": build_manifest(
            {"dataset": dataset_config.model_dump(), "multitask": settings.model_dump(), "seeds": seeds}
        ),
    }
    summary["students_fraction_of_teacher"] = (
        summary["students"]["alone"]["params"] / teacher_result["params"]
    )
    (out / SUMMARY).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary
