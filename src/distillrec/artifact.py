"""The model folder: one trained model on disk, read back without training and without pickle.

Input (`save_model`): a fitted `Recommender`, the `Catalog` it serves (external ids, each known user's
history) and the interactions it was trained on. Output: a folder (format version `FORMAT_VERSION`):

    manifest.json                 format, version, model class, constructor arguments (JSON), data sizes,
                                  every file with its size and sha256, and free `info` (label, seed, metrics)
    weights.safetensors           the fitted state of a torch model (its module's state_dict), or
    state/<name>.npy              the fitted arrays of any other model (EASE's item-item matrix, ...); a
                                  compressed array is stored as its parts, `<name>#<part>` (`codecs.py`,
                                  the manifest's `encoding`), and decoded when read; layers whose hidden
                                  channels were pruned (the manifest's `channels`, `channels.py`) are
                                  stored smaller and read back at their built shapes
    params/<name>.npy             constructor arguments that are arrays (the frozen text table of a teacher;
                                  compressed: `params/<name>#<part>.npy`, the manifest's `param_encoding`)
    ids.json                      {"users": [...], "items": [...]}: the external id of each user / item index
    history_indptr.npy,           each known user's items in time order, CSR-style: the history the model
    history_items.npy               reads for a known user (train + validation, as at test time)
    item_counts.npy               training interactions per item: which items had training rows (what a
                                  model's build step reads, see `models/base.py`)

`read_model` checks the format and version, that every listed file is there with its recorded size (a
truncated file is named) and checksum, and reads arrays with `np.load(allow_pickle=False)` and safetensors
only. Every problem is a `ModelFolderError` naming the folder and the file. Building the model object from
what it reads is `distillrec.recommend.load`'s job (it knows the model classes; this module knows none).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distillrec.channels import expand_channels
from distillrec.codecs import decode
from distillrec.data.download import sha256_file
from distillrec.data.interactions import Interactions
from distillrec.manifest import versions

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Catalog",
    "ModelFolder",
    "ModelFolderError",
    "save_model",
    "read_model",
]

FORMAT = "distillrec-model"
FORMAT_VERSION = 2  # 2: compressed arrays (`encoding`, `param_encoding`); version 1 folders read as before
# 3: written by `compress_model` only where a reader of version 2 would fail (pruned channels, pq codebooks
# quantised); every other folder keeps version 2
READS_VERSIONS = (1, 2, 3)
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"


class ModelFolderError(ValueError):
    """A model folder that cannot be read: names the folder, the file and what is wrong."""


@dataclass(frozen=True, eq=False)
class Catalog:
    """What a saved model serves beside its weights: external ids and the known users' histories."""

    user_ids: np.ndarray  # (n_users,) str
    item_ids: np.ndarray  # (n_items,) str
    history: Interactions  # each known user's items in time order (train + validation for a split)

    def __post_init__(self) -> None:
        if (len(self.user_ids), len(self.item_ids)) != (self.history.n_users, self.history.n_items):
            raise ValueError(
                f"{len(self.user_ids)} user ids and {len(self.item_ids)} item ids for a history over "
                f"{self.history.n_users} users x {self.history.n_items} items"
            )


@dataclass(frozen=True, eq=False)
class ModelFolder:
    """A model folder as read from disk (see the module docstring)."""

    path: Path
    model_class: str
    params: dict  # constructor arguments, array ones included
    state: dict[str, np.ndarray]
    catalog: Catalog
    item_counts: np.ndarray  # (n_items,) training interactions per item
    info: dict

    def trained_shape(self) -> Interactions:
        """The training data's sizes, with one row per item that had training rows (see `models/base.py`)."""
        items = np.flatnonzero(self.item_counts > 0)
        n_users = self.catalog.history.n_users
        users = np.arange(len(items)) % max(1, n_users)
        return Interactions.from_arrays(users, items, np.zeros(len(items)), n_users, len(self.item_counts))


def save_model(
    model, folder: str | Path, catalog: Catalog, trained_on: Interactions, info: dict | None = None
) -> Path:
    """Write `model` (fitted on `trained_on`) to `folder`, replacing what is there; return the folder. The
    folder is written beside and renamed into place, so an interrupted save leaves no half folder behind."""
    folder = Path(folder)
    if (trained_on.n_users, trained_on.n_items) != (catalog.history.n_users, catalog.history.n_items):
        raise ValueError("the model's training data and the catalog are over different id spaces")
    params = dict(model.get_params())
    if "checkpoint_dir" in params:  # where training checkpointed: not part of the trained model
        params["checkpoint_dir"] = None
    arrays = {name: np.asarray(getattr(model, name)) for name in type(model).array_params}
    for name, value in list(params.items()):
        if isinstance(value, np.ndarray):
            arrays[name] = params.pop(name)
        elif isinstance(value, Path):
            params[name] = str(value)
    for name in arrays:
        params.pop(name, None)
    try:
        json.dumps(params)
    except TypeError as exc:
        raise ValueError(
            f"{type(model).__name__}: its constructor arguments cannot be saved ({exc})"
        ) from exc

    tmp = folder.with_name(folder.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "params").mkdir(parents=True)
    state = model.fitted_state()
    marked = sorted(n for n in [*state, *arrays] if "#" in n)
    if marked:  # '#' separates an encoded array's parts (`codecs.py`)
        raise ValueError(f"{type(model).__name__}: array names may not hold '#': {marked}")
    state_format = "safetensors" if type(model).saved_as == "safetensors" else "npy"
    write_state(tmp, state_format, state)
    for name, value in arrays.items():
        np.save(tmp / "params" / f"{name}.npy", value, allow_pickle=False)
    ids = {"users": [str(u) for u in catalog.user_ids], "items": [str(i) for i in catalog.item_ids]}
    (tmp / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
    indptr, items = catalog.history.sequences()
    np.save(tmp / "history_indptr.npy", np.asarray(indptr, dtype=np.int64), allow_pickle=False)
    np.save(tmp / "history_items.npy", np.asarray(items, dtype=np.int32), allow_pickle=False)
    np.save(tmp / "item_counts.npy", trained_on.item_counts().astype(np.int64), allow_pickle=False)

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_class": type(model).__name__,
        "params": params,
        "array_params": sorted(arrays),
        "state_format": state_format,
        "state": sorted(state),
        "encoding": {},
        "n_users": catalog.history.n_users,
        "n_items": catalog.history.n_items,
        "info": info or {},
        "versions": versions(),
    }
    return finish_folder(tmp, manifest, folder)


def write_state(tmp: Path, state_format: str, arrays: dict[str, np.ndarray]) -> None:
    """The state arrays (or an encoded state's parts) as `weights.safetensors` or `state/<name>.npy`."""
    if state_format == "safetensors":
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp / WEIGHTS))
    else:
        (tmp / "state").mkdir()
        for name, value in arrays.items():
            np.save(tmp / "state" / f"{name}.npy", np.asarray(value), allow_pickle=False)


def finish_folder(tmp: Path, manifest: dict, folder: Path) -> Path:
    """Record every file of `tmp` (size, sha256) in `manifest`, write it, and move `tmp` to `folder`."""
    files = sorted(p for p in tmp.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = dict(manifest)
    manifest["files"] = {
        p.relative_to(tmp).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in files
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


def read_model(folder: str | Path) -> ModelFolder:
    """Read and check a model folder (see the module docstring)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        hint = " (a run folder keeps one per model: students/<label>/model, teacher/model, baselines/models/<name>)"
        raise ModelFolderError(f"{path}: no model manifest; is {folder} a saved model folder?{hint}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFolderError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        inner = folder / "model" / MANIFEST
        hint = f"; did you mean {inner.parent}?" if inner.exists() else ""
        raise ModelFolderError(f'{path}: not a distillrec model manifest (no "format": "{FORMAT}"){hint}')
    version = manifest.get("format_version")
    if version not in READS_VERSIONS:
        raise ModelFolderError(
            f"{path}: model folder format version {version!r}; this distillrec reads versions "
            f"{', '.join(map(str, READS_VERSIONS))}"
        )
    keys = ("model_class", "params", "array_params", "state_format", "state", "n_users", "n_items", "files")
    missing = [k for k in keys if k not in manifest]
    if missing:
        raise ModelFolderError(f"{path}: missing key(s) {missing}")
    for name, expected in manifest["files"].items():
        _check_file(folder, name, expected)

    def array(name: str) -> np.ndarray:
        try:
            return np.load(folder / name, allow_pickle=False)
        except ValueError as exc:
            raise ModelFolderError(f"{folder / name}: not a plain numpy array file ({exc})") from exc

    encoding = manifest.get("encoding", {})  # compressed arrays: name -> codec spec (`codecs.py`)
    if manifest["state_format"] == "safetensors":
        from safetensors.numpy import load_file

        stored = load_file(str(folder / WEIGHTS))
    else:
        stored_names = [n for n in manifest["state"] if n not in encoding]
        stored_names += [
            f.removeprefix("state/").removesuffix(".npy")
            for f in manifest["files"]
            if f.startswith("state/") and "#" in f
        ]
        stored = {name: array(f"state/{name}.npy") for name in stored_names}
    state = {name: value for name, value in stored.items() if "#" not in name}
    for name, spec in encoding.items():
        parts = {k.split("#", 1)[1]: v for k, v in stored.items() if k.startswith(f"{name}#")}
        try:
            state[name] = decode(parts, spec)
        except (KeyError, ValueError) as exc:
            raise ModelFolderError(
                f"{folder}: compressed array {name!r} cannot be decoded ({exc!r})"
            ) from None
    if manifest.get("channels"):  # structured pruning stored the smaller layers: back at their built shapes
        try:
            state = expand_channels(state, manifest["channels"])
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            raise ModelFolderError(f"{folder}: pruned channels cannot be restored ({exc!r})") from None
    if sorted(state) != sorted(manifest["state"]):
        raise ModelFolderError(
            f"{folder}: the weights hold {sorted(state)}, the manifest lists {manifest['state']}"
        )
    params = dict(manifest["params"])
    param_encoding = manifest.get("param_encoding", {})  # compressed array parameters (a text table)
    for name in manifest["array_params"]:
        if name not in param_encoding:
            params[name] = array(f"params/{name}.npy")
            continue
        prefix = f"params/{name}#"
        parts = {
            f.removeprefix(prefix).removesuffix(".npy"): array(f)
            for f in manifest["files"]
            if f.startswith(prefix)
        }
        try:
            params[name] = decode(parts, param_encoding[name])
        except (KeyError, ValueError) as exc:
            raise ModelFolderError(
                f"{folder}: compressed parameter {name!r} cannot be decoded ({exc!r})"
            ) from None
    ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
    n_users, n_items = int(manifest["n_users"]), int(manifest["n_items"])
    indptr, items = array("history_indptr.npy"), array("history_items.npy")
    counts = array("item_counts.npy")
    sizes = (len(ids["users"]), len(ids["items"]), len(indptr) - 1, len(counts))
    if sizes != (n_users, n_items, n_users, n_items):
        raise ModelFolderError(
            f"{folder}: ids.json, history_indptr.npy and item_counts.npy do not agree with "
            f"{n_users} users x {n_items} items"
        )
    users = np.repeat(np.arange(n_users), np.diff(indptr))
    history = Interactions(
        users.astype(np.int32),
        items.astype(np.int32),
        np.arange(len(items), dtype=np.int64),
        n_users,
        n_items,
    )
    catalog = Catalog(np.asarray(ids["users"], dtype=object), np.asarray(ids["items"], dtype=object), history)
    return ModelFolder(
        folder, manifest["model_class"], params, state, catalog, counts, manifest.get("info", {})
    )


def _check_file(folder: Path, name: str, expected: dict) -> None:
    path = folder / name
    if not path.is_file():
        raise ModelFolderError(f"{path}: missing (listed in {folder / MANIFEST})")
    size = path.stat().st_size
    if size != expected["bytes"]:
        what = "truncated" if size < expected["bytes"] else "changed"
        raise ModelFolderError(f"{path}: {what}: {size} bytes, the manifest records {expected['bytes']}")
    if sha256_file(path) != expected["sha256"]:
        raise ModelFolderError(f"{path}: corrupted: its sha256 differs from the one the manifest records")
