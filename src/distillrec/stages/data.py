"""Stage 1, data: read a dataset once, prepare and split it, and write it as a folder the later stages read.

Input: a `DatasetConfig` (source and preparation options) and a `SplitConfig`. Output: `PreparedData` (the
`Dataset`, its `Split` and the folder) and, with `out`, a prepared-dataset folder:

    manifest.json        kind "prepared-data", schema version, the full dataset and split config, the dataset
                         fingerprint, every file's size and sha256 (checked when read), the raw files read (name, size, modification time) and the notices of
                         preparation (how the files were read, what was dropped and why, warnings)
    ids.json             {"users": [...], "items": [...]}: the external id of each user / item index
    interactions.npz     users, items, timestamps (and ratings): the prepared, time-ordered interactions
    split.npz            train / valid / test, each as users, items, timestamps
    item_text.parquet    one row per item index, its text columns
    user_attrs.parquet   one row per user index (when the dataset has user attributes)

`read_prepared(folder)` gives the same `PreparedData` back without parsing the raw files again (same
fingerprint, same split). `raw_files_key(config)` identifies the raw input by its files' sizes and times, so a
run can reuse a prepared folder until the raw files change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from distillrec.artifact import Catalog
from distillrec.config import DatasetConfig, SplitConfig
from distillrec.data.dataset import Dataset, load_dataset
from distillrec.data.download import resolve_dataset, sha256_file
from distillrec.data.interactions import Interactions
from distillrec.data.split import Split, make_split
from distillrec.manifest import dataset_fingerprint, write_manifest

__all__ = ["PreparedData", "read_dataset", "prepare_data", "read_prepared", "raw_files_key", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
KIND = "prepared-data"
_PARTS = ("train", "valid", "test")


@dataclass(frozen=True, eq=False)
class PreparedData:
    dataset: Dataset
    split: Split
    folder: Path | None = None

    def catalog(self) -> Catalog:
        """What a saved model serves: the ids and each user's test-time history (train + validation)."""
        return Catalog(self.dataset.user_ids, self.dataset.item_ids, self.split.test_history())

    def summary(self) -> str:
        d, s = self.dataset, self.split
        return (
            f"{d.name}: {d.n_users:,} users, {d.n_items:,} items, {len(d.interactions):,} interactions; split "
            f"{s.protocol}: train {len(s.train):,} / valid {len(s.valid):,} / test {len(s.test):,}"
        )


def raw_files_key(config: DatasetConfig) -> list:
    """The raw input as (file, size, modification time) rows: changes when a file of the source changes."""
    folder = resolve_dataset(config.source)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return [[p.relative_to(folder).as_posix(), p.stat().st_size, int(p.stat().st_mtime)] for p in files]


def read_dataset(dataset: DatasetConfig) -> Dataset:
    """The dataset of a `dataset:` config, read and prepared (not split; `data stats` shows it)."""
    return load_dataset(
        dataset.source,
        min_rating=dataset.min_rating,
        duplicates=dataset.duplicates,
        min_user_interactions=dataset.min_user_interactions,
        min_item_interactions=dataset.min_item_interactions,
        read_options=dataset.read_options(),
        user_fraction=dataset.user_fraction,
        user_seed=dataset.user_seed,
    )


# options added after `distillrec run` keyed its data stage by the whole dataset config: left out of the key at
# their defaults, so a run of an older config still finds its prepared data
KEY_LATER_OPTIONS = {"user_fraction": 1.0, "user_seed": 0}


def key_config(dataset: DatasetConfig) -> dict:
    """The dataset config as the pipeline keys the data stage by (see `KEY_LATER_OPTIONS`)."""
    return {k: v for k, v in dataset.model_dump().items() if KEY_LATER_OPTIONS.get(k, object()) != v}


def prepare_data(dataset: DatasetConfig, split: SplitConfig, out: str | Path | None = None) -> PreparedData:
    """Read and prepare `dataset`, split it; with `out`, write the prepared folder (module docstring)."""
    ds = read_dataset(dataset)
    sp = make_split(ds.interactions, split.protocol, **split.params)
    if len(sp.test) == 0 or len(sp.valid) == 0:
        counts = np.diff(ds.interactions.indptr)
        raise ValueError(
            f"{dataset.source}: the {split.protocol} split leaves no validation or test interaction "
            f"({ds.n_users:,} users, the most active with {int(counts.max(initial=0))} interactions; "
            "leave_one_out needs users with at least 3)"
        )
    if out is None:
        return PreparedData(ds, sp)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = {"users": [str(u) for u in ds.user_ids], "items": [str(i) for i in ds.item_ids]}
    (out / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
    arrays = _arrays(ds.interactions)
    if ds.ratings is not None:
        arrays["ratings"] = ds.ratings
    np.savez(out / "interactions.npz", **arrays)
    np.savez(
        out / "split.npz",
        **{f"{part}_{k}": v for part in _PARTS for k, v in _arrays(getattr(sp, part)).items()},
    )
    ds.item_text.to_parquet(out / "item_text.parquet", index=False)
    written = ["ids.json", "interactions.npz", "split.npz", "item_text.parquet"]
    (out / "user_attrs.parquet").unlink(missing_ok=True)  # a stale one from an earlier preparation
    if ds.user_attrs is not None:
        ds.user_attrs.to_parquet(out / "user_attrs.parquet", index=False)
        written.append("user_attrs.parquet")
    config = {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "name": ds.name,
        "dataset": dataset.model_dump(mode="json"),
        "split": {"protocol": sp.protocol, "params": dict(sp.params)},
        "raw_files": raw_files_key(dataset),
        "notices": list(ds.notices),  # how the files were read, what preparation removed, warnings
        "files": {
            name: {"bytes": (out / name).stat().st_size, "sha256": sha256_file(out / name)}
            for name in written
        },
    }
    write_manifest(out, config, ds)
    return PreparedData(ds, sp, out)


def read_prepared(folder: str | Path) -> PreparedData:
    """A folder written by `prepare_data`, read back (errors name the file and what is wrong)."""
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no manifest; is {folder} a prepared-data folder (`distillrec run`'s data/)?"
        )
    manifest = json.loads(path.read_text(encoding="utf-8"))
    config = manifest.get("config", {})
    if config.get("kind") != KIND:
        raise ValueError(f"{path}: not a prepared-data manifest (kind {config.get('kind')!r})")
    if config.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: prepared-data schema version {config.get('schema_version')!r}; this distillrec reads "
            f"version {SCHEMA_VERSION} (prepare the dataset again)"
        )
    for name, expected in config.get("files", {}).items():  # sizes and checksums, when recorded
        file = folder / name
        if not file.is_file():
            raise FileNotFoundError(f"{file}: missing (listed in {path})")
        if file.stat().st_size != expected["bytes"] or sha256_file(file) != expected["sha256"]:
            raise ValueError(f"{file}: its size or checksum differs from the one {path} records (damaged?)")
    ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
    user_ids, item_ids = np.asarray(ids["users"]), np.asarray(ids["items"])
    n_users, n_items = len(user_ids), len(item_ids)
    with np.load(folder / "interactions.npz", allow_pickle=False) as data:
        interactions = _interactions(data, "", n_users, n_items)
        ratings = data["ratings"] if "ratings" in data else None
    with np.load(folder / "split.npz", allow_pickle=False) as data:
        parts = [_interactions(data, f"{part}_", n_users, n_items) for part in _PARTS]
    item_text = pd.read_parquet(folder / "item_text.parquet")
    attrs_path = folder / "user_attrs.parquet"
    user_attrs = pd.read_parquet(attrs_path) if attrs_path.exists() else None
    notices = tuple(config.get("notices", ()))
    ds = Dataset(config["name"], user_ids, item_ids, interactions, item_text, user_attrs, ratings, notices)
    fingerprint = manifest.get("dataset", {}).get("fingerprint")
    if fingerprint != dataset_fingerprint(ds):
        raise ValueError(f"{folder}: its arrays do not match the fingerprint in {path} (changed or damaged)")
    split = Split(*parts, config["split"]["protocol"], dict(config["split"]["params"]))
    return PreparedData(ds, split, folder)


def _arrays(inter: Interactions) -> dict[str, np.ndarray]:
    return {"users": inter.users, "items": inter.items, "timestamps": inter.timestamps}


def _interactions(data, prefix: str, n_users: int, n_items: int) -> Interactions:
    return Interactions(
        data[f"{prefix}users"], data[f"{prefix}items"], data[f"{prefix}timestamps"], n_users, n_items
    )
