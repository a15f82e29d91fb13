"""`load` a saved model folder and ask it for recommendations in external ids.

Input: a model folder (`artifact.py`; a run writes one per trained model). Output: a `SavedModel` whose
`recommend(user=..., history=..., k=...)` returns `[(item_id, score), ...]`, best first.

What a request means:
- `user` alone: the user's known history (train + validation when the folder came from a split), so the
  top-10 of a test user is the list the evaluation ranked for that user's test item;
- `history` alone: a new user with these items, oldest first;
- both: the user's known history followed by the given items.
Item ids the model does not know are skipped and reported (`Recommendation.unknown_items`, and a warning from
`recommend`). A request with no usable history (an unknown user without items, or only unknown items) gets
the cold-start answer: the items with the most interactions in the known histories. With `exclude_seen` (the
default) the items of the history are never recommended. Models that score a user by a vector learned in training
(iALS, BPR, MF, a multi-task student: `reads_history = False`) answer for known users, with or without a history
(an unknown one gets the cold-start answer), and cannot read added items.

Scores are the model's own (for ties, the lower item index first, as the evaluation breaks them); a model is
scored in batches of `batch_size` requests, each one `score` call over the whole catalogue.
"""

from __future__ import annotations

import json
import numbers
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from distillrec.artifact import Catalog, ModelFolder, ModelFolderError, read_model
from distillrec.data.interactions import Interactions
from distillrec.evaluate.ranking import top_k
from distillrec.models.base import Recommender
from distillrec.train.loop import bf16_autocast

__all__ = ["load", "SavedModel", "Request", "Recommendation", "model_classes", "serving_cost"]


def model_classes() -> dict[str, type[Recommender]]:
    """Every model class a folder may name: baselines, students, the teacher, the text-only model, an exported
    ONNX model and a multi-task student."""
    from distillrec.models.onnx_model import OnnxRecommender
    from distillrec.models.registry import BASELINES
    from distillrec.models.text_similarity import TextSimilarity
    from distillrec.multitask.served import MultiTaskStudent
    from distillrec.students.registry import STUDENTS
    from distillrec.teachers.llm_enhanced_seq import LLMEnhancedSASRec

    classes = [
        *BASELINES.values(),
        *STUDENTS.values(),
        LLMEnhancedSASRec,
        TextSimilarity,
        OnnxRecommender,
        MultiTaskStudent,
    ]
    return {cls.__name__: cls for cls in classes}


def load(folder: str | Path) -> SavedModel:
    """The model saved in `folder`, ready to recommend (no training); a `ModelFolderError` names what is
    wrong with a folder that cannot be read."""
    saved = read_model(folder)
    classes = model_classes()
    if saved.model_class not in classes:
        raise ModelFolderError(
            f"{saved.path}: model class {saved.model_class!r} is not one this distillrec knows ({sorted(classes)})"
        )
    try:
        model = classes[saved.model_class](**saved.params)
    except (TypeError, ValueError) as exc:
        raise ModelFolderError(
            f"{saved.path}: the saved settings do not fit {saved.model_class} ({exc})"
        ) from exc
    shape = saved.trained_shape()
    try:
        model.restore(saved.state, shape)
    except (ValueError, KeyError) as exc:
        raise ModelFolderError(f"{saved.path}: {exc}") from exc
    return SavedModel(model, saved, shape)


@dataclass(frozen=True)
class Request:
    user: str | None = None
    history: Sequence[str] = ()
    k: int = 10


@dataclass(frozen=True)
class Recommendation:
    user: str | None
    items: list[str]
    scores: list[float]
    unknown_items: list[str] = field(default_factory=list)  # history ids the model does not know (skipped)
    unknown_user: bool = False  # a user id the model does not know (its request read only `history`)
    cold_start: bool = False  # no usable history: the most popular items

    def pairs(self) -> list[tuple[str, float]]:
        return list(zip(self.items, self.scores, strict=True))

    def to_json(self) -> dict:
        row = {"user_id": self.user, "items": self.items, "scores": self.scores}
        if self.unknown_items:
            row["unknown_items"] = self.unknown_items
        if self.unknown_user:
            row["unknown_user"] = True
        if self.cold_start:
            row["cold_start"] = True
        return row


class SavedModel:
    """A loaded model with its catalogue (see the module docstring). `model` is the fitted `Recommender`."""

    def __init__(self, model: Recommender, saved: ModelFolder, trained_shape: Interactions) -> None:
        self.model = model
        self.trained_shape = trained_shape  # the training data's sizes and trained items (`models/base.py`)
        self.path = saved.path
        self.info = saved.info
        self.catalog: Catalog = saved.catalog
        self._popularity = saved.catalog.history.item_counts().astype(np.float32)[None, :]  # (1, n_items)
        # scored under bfloat16 autocast when its stage evaluated it so (a bf16 teacher), else in float32
        self.bf16 = bool(saved.info.get("evaluated_in_bf16", False))
        self._user_index = {u: i for i, u in enumerate(saved.catalog.user_ids)}
        self._item_index = {it: i for i, it in enumerate(saved.catalog.item_ids)}

    def __repr__(self) -> str:
        return (
            f"SavedModel({type(self.model).__name__}, {len(self.catalog.user_ids):,} users, "
            f"{len(self.catalog.item_ids):,} items, from {self.path})"
        )

    def recommend(
        self,
        user: str | None = None,
        history: Sequence[str] | None = None,
        k: int = 10,
        exclude_seen: bool = True,
    ) -> list[tuple[str, float]]:
        """The top `k` items for one user or history, `[(item_id, score), ...]`, best first."""
        if user is None and history is None:
            raise ValueError("give a user id, a history of item ids, or both")
        (result,) = self.rank([Request(_id(user), _ids(history), k)], exclude_seen=exclude_seen)
        if result.unknown_items:
            warnings.warn(f"skipped item id(s) the model does not know: {result.unknown_items}", stacklevel=2)
        if result.unknown_user:
            warnings.warn(
                f"user {user!r} is not known to the model: only the given history is read", stacklevel=2
            )
        return result.pairs()

    def recommend_batch(
        self,
        histories: Iterable[Sequence[str]] | None = None,
        users: Iterable[str] | None = None,
        k: int = 10,
        exclude_seen: bool = True,
        batch_size: int = 256,
        progress: bool = False,
    ) -> list[list[tuple[str, float]]]:
        """`recommend` for many users or histories (or pairs of both, zipped), scored in batches."""
        if histories is None and users is None:
            raise ValueError("give histories, users, or both")
        hist = [_ids(h) for h in histories] if histories is not None else None
        ids = [_id(u) for u in users] if users is not None else None
        if hist is not None and ids is not None and len(hist) != len(ids):
            raise ValueError(f"{len(ids)} users but {len(hist)} histories")
        n = len(hist) if hist is not None else len(ids)
        requests = [Request(ids[i] if ids else None, hist[i] if hist else (), k) for i in range(n)]
        results = self.rank(requests, exclude_seen=exclude_seen, batch_size=batch_size, progress=progress)
        return [r.pairs() for r in results]

    def rank(
        self,
        requests: Sequence[Request],
        exclude_seen: bool = True,
        batch_size: int = 256,
        progress: bool = False,
    ) -> list[Recommendation]:
        """One `Recommendation` per request, in order (the building block of `recommend` and the CLI)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        resolved = [self._resolve(i, r) for i, r in enumerate(requests)]
        results: list[Recommendation | None] = [None] * len(requests)
        # a model that scores a known user by a learned vector needs no history (a multi-task student's user
        # without clicks); any other request without one gets the cold-start answer
        by_vector = not self.model.reads_history
        scored = [i for i, (u, seq, _, _) in enumerate(resolved) if len(seq) or (by_vector and u is not None)]
        for i in set(range(len(requests))) - set(scored):
            results[i] = self._cold_start(requests[i], *resolved[i][2:])
        n_items = len(self.catalog.item_ids)
        bar = tqdm(total=len(scored), desc="recommend", unit="request", disable=not progress)
        for start in range(0, len(scored), batch_size):
            batch = scored[start : start + batch_size]
            seqs = [resolved[i][1] for i in batch]
            if self.model.reads_history:
                users = np.arange(len(batch))
                history = as_interactions(seqs, n_items)
            else:
                users = np.array([resolved[i][0] for i in batch])
                history = self.catalog.history
            with bf16_autocast(self.bf16):  # as its stage evaluated it
                scores = self.model.score(users, history)
            scores = np.array(scores, dtype=np.float32, copy=True)  # (batch, n_items)
            if exclude_seen:
                rows = np.repeat(np.arange(len(batch)), [len(s) for s in seqs])
                scores[rows, np.concatenate(seqs)] = -np.inf
            width = min(n_items, int(max(requests[i].k for i in batch)))
            top = top_k(scores, width)  # (batch, width)
            for row, i in enumerate(batch):
                picked = top[row, : int(requests[i].k)]
                picked = picked[np.isfinite(scores[row, picked])]  # fewer unseen items than k: no masked ones
                results[i] = Recommendation(
                    requests[i].user,
                    [str(self.catalog.item_ids[j]) for j in picked],
                    [float(v) for v in scores[row, picked]],
                    resolved[i][2],
                    resolved[i][3],
                )
            bar.update(len(batch))
        bar.close()
        return results

    def _resolve(self, index: int, request: Request) -> tuple[int | None, np.ndarray, list[str], bool]:
        """(user index or None, history item indices oldest first, unknown item ids, unknown user?)"""
        if isinstance(request.k, bool) or not isinstance(request.k, numbers.Integral) or request.k < 1:
            raise ValueError(f"request {index}: k must be a positive integer, got {request.k!r}")
        user = self._user_index.get(request.user) if request.user is not None else None
        unknown_user = request.user is not None and user is None
        known = [self._item_index[i] for i in request.history if i in self._item_index]
        unknown = [i for i in request.history if i not in self._item_index]
        if not self.model.reads_history and known:  # an unknown user alone still gets the cold-start answer
            name = type(self.model).__name__
            raise ValueError(
                f"request {index}: {name} scores a user by a vector learned in training, so it cannot read a "
                f"history it was not trained on; ask it for a known user alone"
            )
        seq = self.catalog.history.sequence(user) if user is not None else np.zeros(0, dtype=np.int32)
        seq = np.concatenate([seq, np.asarray(known, dtype=np.int32)]).astype(np.int64)
        return user, seq, unknown, unknown_user

    def _cold_start(self, request: Request, unknown: list[str], unknown_user: bool) -> Recommendation:
        counts = self._popularity
        picked = top_k(counts, min(int(request.k), counts.shape[1]))[0]
        items = [str(self.catalog.item_ids[j]) for j in picked]
        return Recommendation(
            request.user, items, [float(counts[0, j]) for j in picked], unknown, unknown_user, True
        )


def as_interactions(seqs: list[np.ndarray], n_items: int) -> Interactions:
    """Row b holds `seqs[b]` in order: the history `score` reads for a batch of requests."""
    lengths = [len(s) for s in seqs]
    users = np.repeat(np.arange(len(seqs)), lengths).astype(np.int32)
    items = np.concatenate(seqs).astype(np.int32)
    return Interactions(users, items, np.arange(len(items), dtype=np.int64), len(seqs), n_items)


def _id(value) -> str | None:
    return None if value is None else str(value)


def _ids(values: Sequence | None) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str | bytes):
        raise TypeError(f"a history is a list of item ids, got the string {values!r}")
    return tuple(str(v) for v in values)


def serving_cost(saved: SavedModel, users: Sequence[str], k: int = 10, warmup: int = 5) -> dict:
    """What serving `saved` costs: `weights_bytes`, what its folder stores of the model (weights, state and array
    parameters such as a text table; not the ids and histories every folder carries), and the latency of one
    user's full-catalogue top-`k` through `recommend` (`latency_ms_p50` / `latency_ms_p99` over `users`, one at a
    time, after `warmup` requests), on the threads the process has."""
    manifest = json.loads((Path(saved.path) / "manifest.json").read_text(encoding="utf-8"))
    stored = ("weights.safetensors", "state/", "params/")
    size = sum(f["bytes"] for name, f in manifest["files"].items() if name.startswith(stored))
    requests = [Request(str(u), (), k) for u in users]
    for request in requests[:warmup]:
        saved.rank([request])
    times = []
    for request in requests:
        start = time.perf_counter()
        saved.rank([request])
        times.append(time.perf_counter() - start)
    ms = 1000 * np.asarray(times) if times else np.zeros(1)
    return {
        "weights_bytes": int(size),
        "latency_ms_p50": float(np.percentile(ms, 50)),
        "latency_ms_p99": float(np.percentile(ms, 99)),
    }
