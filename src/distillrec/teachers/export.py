"""Export a trained teacher's outputs once, as memory-mapped arrays the distillation loop reads.

Input: a fitted sequential teacher (`score`-able `SASRec` subclass with `module_`, `max_len`) and the training
`Interactions`. Output, in `out/`:

| file | shape / dtype | what |
|---|---|---|
| `positions_topk_items.npy`  | (n_train, K) int32   | row r: the teacher's top-K next items after reading train row r (and the rows before it) of r's user; -1 where not covered |
| `positions_topk_scores.npy` | (n_train, K) float32 | their logits (or a blend's scores, below), best first |
| `positions_hidden.npy`      | (n_train, dim) float16 | the teacher's hidden state at row r (only with `position_hidden=True`) |
| `user_hidden.npy`           | (n_users, dim) float32 | hidden state after each user's whole training sequence (zeros for users without one) |
| `item_embeddings.npy`       | (n_items, dim) float32 | the teacher's item table (input and output layer) |
| `manifest.json`             | | config, dataset fingerprint, teacher identity, versions, K, coverage |

With `blend` (a fitted `TextBlend` of this teacher and a `TextSimilarity` text model, `models/text_blend.py`), the
top-K and their scores are the blend's instead: at row r, the teacher's logits blended with the text model's
scores after the same items (`TextSimilarity.prefix_scores`), at the blend's picked weight, mapped back to the
teacher's logit scale (`blend_in_model_units`), so the soft labels carry the text's ranking of rare items at the
teacher's sharpness; the manifest records the weight (`soft_labels`). The hidden states and the item table stay
the teacher's own.

Rows follow `train`'s order (user, then time), so `positions_*[indptr[u]:indptr[u+1]]` are user u's positions.
Coverage: the teacher reads the last `max_len` training items of each user, the window SASRec-style students
train on; rows before it (users with more than `max_len` training items) get -1. Scores are the raw logits (or
the blend's).

Seen items are excluded (`exclude_seen=True`, the default): row r's top-K is taken over the items r's user has
not interacted with up to and including row r, as a recommendation at that point would be (the evaluation masks
the history the same way). Without it, a SASRec teacher ranks the items the user has just read first: on
ml-100k 90% of the unmasked top-1 and 4.3 of the top-10 were already in the user's history, so soft labels spent
their mass, and ranking terms their positives, on items no test ever asks for. Turn it off only for data with
repeat consumption. K is capped at `n_items - longest training sequence`, so every slot holds an unseen item.

`bf16=True` runs the teacher's network under bfloat16 autocast; the scores are still the float32 product of its
state and the float32 item table, as `teacher.score` computes them under autocast (benchmarks/bf16_inference.py:
scoring ml-1m's test users, the same top 10 for 97% of them, NDCG@10 unchanged, 1.7x faster). The flag is not
a manifest key of its own, so a finished float32 export of a `--bf16` teacher (written before exports followed
that flag) stays finished; `build_teacher`'s manifest records the teacher's `bf16` in its config.

Resumable: users are processed in chunks; after each chunk the arrays are flushed and `progress.json` records
the number of users done, so an interrupted export continues where it stopped (if the manifest matches;
`created`, `versions` and `coverage` are not compared).

Under torchrun (`train/distributed.py`) the chunks are shared out: of every N consecutive chunks, rank r computes
the r-th, every rank receives the others' results (`gather_all`) and writes the whole export into its own folder,
so each rank's copy is the one process's export, computed in about 1/N of the time (the same chunks, the same
weights: the same arrays). A resumed or finished export keeps its manifest's
`created` and `versions`, so a finished one is left byte for byte (student runs may be keyed by its bytes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from distillrec.data.interactions import Interactions
from distillrec.devices import module_device
from distillrec.layers.sasrec import history_windows
from distillrec.models.text_blend import TextBlend, blend_in_model_units
from distillrec.models.text_similarity import TextSimilarity
from distillrec.train import distributed
from distillrec.train.loop import bf16_autocast

FILES = ("positions_topk_items", "positions_topk_scores", "user_hidden", "item_embeddings")


def export_teacher(
    teacher,
    train: Interactions,
    out: str | Path,
    manifest: dict,
    top_k: int = 100,
    position_hidden: bool = False,
    chunk_users: int = 256,
    progress: bool = True,
    exclude_seen: bool = True,
    bf16: bool = False,
    blend: TextBlend | None = None,
) -> Path:
    if blend is not None and blend.model is not teacher:
        raise ValueError("blend: a TextBlend of another model than the teacher to export")
    if blend is not None and not isinstance(blend.text, TextSimilarity):
        raise TypeError(f"blend: its text model must be a TextSimilarity, got {type(blend.text).__name__}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    indptr = train.indptr
    longest = int(np.diff(indptr).max(initial=0)) if exclude_seen else 0
    top_k = min(top_k, train.n_items - longest)
    if top_k < 1:
        raise ValueError(
            f"exclude_seen: a user has {longest} training items of only {train.n_items}, so no unseen item is left "
            "to export; use exclude_seen=False"
        )
    manifest = dict(
        manifest,
        top_k=top_k,
        position_hidden=position_hidden,
        exclude_seen=exclude_seen,
        n_train=len(train),
        n_users=train.n_users,
        n_items=train.n_items,
        files=[*FILES, "positions_hidden"] if position_hidden else list(FILES),
    )
    if blend is not None:  # only then, so the manifest of a teacher's own export is as it always was
        manifest["soft_labels"] = {"blend_weight": float(blend.weight_)}
    progress_path = out / "progress.json"
    manifest_path = out / "manifest.json"
    done = 0
    if progress_path.exists() and manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        if _same(old, manifest):
            done = json.loads(progress_path.read_text())["done_users"]
            # the same export resumed (or found finished): keep its creation time and versions, so a finished
            # export's manifest stays byte for byte what it was
            manifest.update({key: old[key] for key in ("created", "versions") if key in old})
    done = distributed.broadcast(done)  # under torchrun: every rank takes the same groups of chunks
    mode = "r+" if done > 0 else "w+"
    # before any array is truncated: from here on an interruption never reads as a finished export
    if done == 0:
        _write_json(progress_path, {"done_users": 0})
        if not position_hidden:
            (out / "positions_hidden.npy").unlink(missing_ok=True)  # a stale one from an earlier export
    dim = teacher.module_.dim
    arrays = {
        "positions_topk_items": _open(out, "positions_topk_items", (len(train), top_k), np.int32, mode),
        "positions_topk_scores": _open(out, "positions_topk_scores", (len(train), top_k), np.float32, mode),
        "user_hidden": _open(out, "user_hidden", (train.n_users, dim), np.float32, mode),
    }
    if position_hidden:
        arrays["positions_hidden"] = _open(out, "positions_hidden", (len(train), dim), np.float16, mode)
    if done == 0:
        arrays["positions_topk_items"][:] = -1
        np.save(out / "item_embeddings.npy", teacher.item_embeddings())
        _write_json(manifest_path, manifest)
        _write_json(progress_path, {"done_users": 0})
    module = teacher.module_
    module.eval()
    device = module_device(module)  # where the teacher trained: its scores are computed there
    with torch.inference_mode():  # the item table, once: a text teacher computes it through its adapter
        table_t = module.item_table().T  # (dim, n_items), what `module.logits` multiplies by
    bar = tqdm(total=train.n_users, initial=done, desc="export teacher", unit="user", disable=not progress)
    rank, n_ranks = distributed.world()
    for first in range(done, train.n_users, chunk_users * n_ranks):
        starts = list(range(first, min(first + chunk_users * n_ranks, train.n_users), chunk_users))
        mine = None
        if rank < len(starts):  # this rank's chunk of the group
            users = np.arange(starts[rank], min(starts[rank] + chunk_users, train.n_users))
            mine = _export_chunk(
                module, teacher.max_len, table_t, users, train, top_k, exclude_seen, bf16, device, blend
            )
        for rows in distributed.gather_all(mine):
            for user, span, items, scores, hidden in rows or ():
                arrays["positions_topk_items"][span] = items
                arrays["positions_topk_scores"][span] = scores
                arrays["user_hidden"][user] = hidden[-1]
                if position_hidden:
                    arrays["positions_hidden"][span] = hidden.astype(np.float16)
        for array in arrays.values():
            array.flush()
        end = min(starts[-1] + chunk_users, train.n_users)
        _write_json(progress_path, {"done_users": end})
        bar.update(end - first)
    bar.close()
    covered = arrays["positions_topk_items"][:, 0] >= 0
    manifest["coverage"] = float(covered.mean()) if len(covered) else 0.0
    for name in ("positions_topk_scores", "user_hidden"):  # a broken model is caught here, not in training
        _check_finite(out / f"{name}.npy", arrays[name])
    names = [*FILES, "positions_hidden"] if position_hidden else list(FILES)
    manifest["file_bytes"] = {f"{n}.npy": (out / f"{n}.npy").stat().st_size for n in names}
    _write_json(manifest_path, manifest)
    return out


def _export_chunk(
    module, max_len, table_t, users, train, top_k, exclude_seen, bf16, device, blend=None
) -> list[tuple]:
    """(user, rows, top-K items, their scores, hidden states) for each user of `users` with training rows."""
    indptr = train.indptr
    active = users[np.diff(indptr)[users] > 0]
    if not len(active):
        return []
    ids = history_windows(active, train, max_len).to(device)  # (batch, width) left-padded
    with torch.inference_mode(), bf16_autocast(bf16, device):
        hidden = module(ids).float()  # (batch, width, dim)
    out = []
    with torch.inference_mode():  # the scores in float32, as `teacher.score` computes them
        for row, user in enumerate(active):
            n = min(int(indptr[user + 1] - indptr[user]), max_len)
            h = hidden[row, -n:]  # (n, dim) positions of the covered rows
            logits = h @ table_t  # (n, n_items) = module.logits(h)
            if blend is not None:  # blended before the seen items are masked, as `TextBlend.score` is
                text = blend.text.prefix_scores(train.sequence(int(user)), n)  # (n, n_items)
                blended = blend_in_model_units(logits.cpu().numpy(), text, blend.weight_)
                logits = torch.from_numpy(blended).to(device)
            if exclude_seen:
                logits = logits.masked_fill(
                    _seen_mask(train.sequence(int(user)), n, train.n_items).to(device), -torch.inf
                )
            scores, items = (t.cpu() for t in torch.topk(logits, top_k, dim=1))  # (n, K)
            span = slice(int(indptr[user + 1]) - n, int(indptr[user + 1]))
            out.append((int(user), span, items.numpy().astype(np.int32), scores.numpy(), h.cpu().numpy()))
    return out


def _check_finite(path: Path, array: np.ndarray, chunk: int = 1 << 16) -> None:
    """An error naming the file and the first row with a NaN or an infinite value (checked in row chunks)."""
    for start in range(0, len(array), chunk):
        bad = ~np.isfinite(np.asarray(array[start : start + chunk], dtype=np.float32))
        if bad.any():
            row = start + int(np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))[0])
            raise ValueError(f"{path}: row {row} holds a NaN or infinite value (a diverged teacher?)")


def _check_items(path: Path, array: np.ndarray, n_items: int, chunk: int = 1 << 16) -> None:
    """An error naming the file and the first row with an item id outside [-1, n_items) (-1: not covered)."""
    for start in range(0, len(array), chunk):
        part = np.asarray(array[start : start + chunk])
        bad = (part < -1) | (part >= n_items)
        if bad.any():
            row = start + int(np.flatnonzero(bad.any(axis=1))[0])
            raise ValueError(f"{path}: row {row} holds an item id outside [-1, {n_items}) (damaged?)")


def _seen_mask(sequence: np.ndarray, n: int, n_items: int) -> torch.Tensor:
    """(n, n_items) bool: row j is True on the items of `sequence` up to and including its (len - n + j)-th,
    i.e. what the user has seen at each of the last `n` positions."""
    sequence = torch.from_numpy(sequence.astype(np.int64))
    before, window = sequence[: len(sequence) - n], sequence[len(sequence) - n :]
    first_seen = torch.zeros(n, n_items, dtype=torch.int32)
    first_seen[torch.arange(n), window] = 1
    seen = first_seen.cumsum(dim=0) > 0  # (n, n_items): seen at or before position j
    seen[:, before] = True
    return seen


def _open(out: Path, name: str, shape: tuple, dtype, mode: str) -> np.memmap:
    return np.lib.format.open_memmap(out / f"{name}.npy", mode=mode, dtype=dtype, shape=shape)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


# manifest keys that do not decide whether an export can be resumed
_NOT_COMPARED = ("coverage", "created", "versions", "file_bytes")


def _same(old: dict, new: dict) -> bool:
    return {k: v for k, v in old.items() if k not in _NOT_COMPARED} == json.loads(
        json.dumps({k: v for k, v in new.items() if k not in _NOT_COMPARED}, default=str)
    )


class TeacherArtifacts:
    """Read-only view of an exported teacher folder (memory-mapped; nothing is loaded until indexed)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        manifest_path = self.folder / "manifest.json"
        if not manifest_path.exists():
            raise FileNotFoundError(f"{manifest_path}: no teacher manifest; run `distillrec teacher` first")
        self.manifest = json.loads(manifest_path.read_text())
        progress = json.loads((self.folder / "progress.json").read_text())
        if progress["done_users"] < self.manifest["n_users"]:
            raise RuntimeError(
                f"{self.folder}: export stopped after {progress['done_users']} of {self.manifest['n_users']} users; "
                "re-run the teacher export to finish it"
            )
        for name in FILES:
            setattr(self, name, self._open(f"{name}.npy"))
        hidden = self.folder / "positions_hidden.npy"
        exported = self.manifest.get("position_hidden", hidden.exists())  # older manifests lack the key
        self.positions_hidden = self._open(hidden.name) if exported else None
        _check_items(
            self.folder / "positions_topk_items.npy", self.positions_topk_items, self.manifest["n_items"]
        )
        for name in ("positions_topk_scores", "user_hidden"):
            _check_finite(self.folder / f"{name}.npy", getattr(self, name))

    def _open(self, name: str) -> np.ndarray:
        """A memory-mapped array of the folder; a missing, truncated or changed file is named (its size is
        checked against the manifest's record when there is one)."""
        path = self.folder / name
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: missing from the teacher export (listed in {self.folder / 'manifest.json'})"
            )
        expected = self.manifest.get("file_bytes", {}).get(name)
        size = path.stat().st_size
        if expected is not None and size != expected:
            what = "truncated" if size < expected else "changed"
            raise ValueError(f"{path}: {what}: {size} bytes, the manifest records {expected}")
        try:
            return np.load(path, mmap_mode="r")
        except ValueError as exc:
            raise ValueError(f"{path}: not a readable array (truncated?): {exc}") from None
