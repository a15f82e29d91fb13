"""`Dataset`: raw tables -> integer ids, time-ordered interactions and item text, ready to split.

Input: a dataset argument (known name or folder; see `download.resolve_dataset`) and preparation options.
Output: a `Dataset` whose `interactions` is an `Interactions` over `n_users` x `n_items` (indices into
`user_ids` / `item_ids`, the original ids as strings), `item_text` (one row per item index, its text
columns) and `user_attrs` (or None).

Preparation, in this order:
1. implicit conversion: keep every interaction, or only those with `rating >= min_rating`;
2. duplicates of a (user, item) pair: keep the `first` or `last` occurrence in time, or `all`;
3. k-core filtering: repeatedly drop users with fewer than `min_user_interactions` and items with fewer than
   `min_item_interactions` until both hold;
4. ids: users and items are numbered in order of their original ids (numerically when all ids are integers);
   the catalogue is the interacted items, plus never-interacted items of the item table when
   `keep_cold_items` is set.
Each user's interactions are ordered by timestamp with a stable sort, so equal timestamps keep file order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from distillrec.data.download import resolve_dataset
from distillrec.data.errors import DataError
from distillrec.data.formats import RawData, ReadOptions, read_raw
from distillrec.data.interactions import Interactions

Duplicates = Literal["first", "last", "all"]


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    user_ids: np.ndarray  # (n_users,) original ids, str
    item_ids: np.ndarray  # (n_items,) original ids, str
    interactions: Interactions
    item_text: pd.DataFrame  # (n_items, text columns), row i = item index i
    user_attrs: pd.DataFrame | None  # (n_users, attribute columns) or None
    ratings: np.ndarray | None = None  # (n_interactions,) aligned with `interactions`, or None
    notices: tuple[str, ...] = ()  # how the files were read and what preparation removed, for the user

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def stats(self) -> dict[str, float]:
        """Users, items, interactions, density, sequence-length quantiles, text coverage."""
        inter = self.interactions
        lengths = np.diff(inter.indptr)
        q = np.quantile(lengths, [0.0, 0.25, 0.5, 0.75, 0.9, 1.0]) if len(lengths) else np.zeros(6)
        out: dict[str, float] = {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": len(inter),
            "density": len(inter) / max(1, self.n_users * self.n_items),
            "items_never_interacted": int((inter.item_counts() == 0).sum()),
        }
        for name, value in zip(("min", "p25", "median", "p75", "p90", "max"), q, strict=True):
            out[f"seq_len_{name}"] = float(value)
        out["seq_len_mean"] = float(lengths.mean()) if len(lengths) else 0.0
        for column in self.item_text.columns:
            filled = self.item_text[column].astype(str).str.strip() != ""
            out[f"text_coverage_{column}"] = float(filled.mean())
        return out


def load_dataset(
    source: str | Path,
    *,
    min_rating: float | None = None,
    duplicates: Duplicates = "first",
    min_user_interactions: int = 0,
    min_item_interactions: int = 0,
    keep_cold_items: bool = False,
    download: bool = True,
    read_options: ReadOptions | None = None,
    user_fraction: float = 1.0,
    user_seed: int = 0,
) -> Dataset:
    """`read_options`: the column names and time format of a generic-format folder (`ReadOptions`).
    `user_fraction` < 1 keeps that share of the users (a seeded draw, after the filters); the others are not
    seen at all (low-data experiments)."""
    _check_options(duplicates, min_user_interactions, min_item_interactions)
    folder = resolve_dataset(source, download=download)
    raw = read_raw(folder, read_options)
    name = str(source) if not Path(str(source)).exists() else Path(source).resolve().name
    return prepare(
        raw,
        name=name,
        min_rating=min_rating,
        duplicates=duplicates,
        min_user_interactions=min_user_interactions,
        min_item_interactions=min_item_interactions,
        keep_cold_items=keep_cold_items,
        user_fraction=user_fraction,
        user_seed=user_seed,
    )


def prepare(
    raw: RawData,
    *,
    name: str,
    min_rating: float | None = None,
    duplicates: Duplicates = "first",
    min_user_interactions: int = 0,
    min_item_interactions: int = 0,
    keep_cold_items: bool = False,
    user_fraction: float = 1.0,
    user_seed: int = 0,
) -> Dataset:
    _check_options(duplicates, min_user_interactions, min_item_interactions)
    if not 0 < user_fraction <= 1:
        raise ValueError(f"user_fraction must be in (0, 1], got {user_fraction!r}")
    inter = raw.interactions
    # Time order first (stable: equal timestamps keep file order); everything after keeps this order.
    # np.lexsort is documented as stable (pandas' multi-column sort_values ignores `kind`).
    user_codes = pd.factorize(inter["user_id"])[0]
    inter = inter.iloc[np.lexsort((inter["timestamp"].to_numpy(), user_codes))].reset_index(drop=True)
    notices = [*raw.notices, *_suspicious_times(inter["timestamp"].to_numpy(), raw.files[0].name)]
    if min_rating is not None:
        if "rating" not in inter.columns:
            raise DataError(
                raw.files[0], f"min_rating={min_rating} was asked for, but there is no rating column"
            )
        before = len(inter)
        inter = inter[inter["rating"] >= min_rating]
        notices.append(f"min_rating={min_rating}: dropped {before - len(inter):,} of {before:,} interactions")
    if duplicates != "all":
        before = len(inter)
        inter = inter[~inter.duplicated(["user_id", "item_id"], keep=duplicates)]
        if len(inter) < before:
            notices.append(
                f"duplicates={duplicates!r}: dropped {before - len(inter):,} repeated (user, item) interactions, "
                f"keeping the {duplicates} of each (duplicates='all' keeps them)"
            )
    before = (len(inter), inter["user_id"].nunique(), inter["item_id"].nunique())
    inter = _k_core(inter, min_user_interactions, min_item_interactions)
    if len(inter) < before[0]:
        notices.append(
            f"k-core (users >= {min_user_interactions}, items >= {min_item_interactions} interactions): dropped "
            f"{before[1] - inter['user_id'].nunique():,} users, {before[2] - inter['item_id'].nunique():,} items "
            f"and {before[0] - len(inter):,} interactions"
        )
    if inter.empty:
        raise DataError(
            raw.files[0], "no interactions left after filtering (min_rating / k-core too strict?)"
        )
    if user_fraction < 1:
        users = _sorted_ids(inter["user_id"].unique())
        kept = np.random.default_rng(user_seed).permutation(len(users))[
            : max(1, round(user_fraction * len(users)))
        ]
        before = len(inter)
        inter = inter[inter["user_id"].isin(users[np.sort(kept)])]
        notices.append(
            f"user_fraction={user_fraction} (seed {user_seed}): kept {len(kept):,} of {len(users):,} users and "
            f"{len(inter):,} of {before:,} interactions"
        )

    user_ids = _sorted_ids(inter["user_id"].unique())
    item_pool = inter["item_id"].unique()
    if keep_cold_items and raw.items is not None:
        item_pool = np.union1d(item_pool, raw.items["item_id"].to_numpy())
    item_ids = _sorted_ids(item_pool)
    user_index = pd.Index(user_ids)
    item_index = pd.Index(item_ids)
    interactions = Interactions.from_arrays(
        user_index.get_indexer(inter["user_id"]),
        item_index.get_indexer(inter["item_id"]),
        inter["timestamp"].to_numpy(),
        len(user_ids),
        len(item_ids),
    )
    ratings = None
    if "rating" in inter.columns:
        # from_arrays re-sorts stably by (user, timestamp); apply the same order to ratings.
        order = np.lexsort((inter["timestamp"].to_numpy(), user_index.get_indexer(inter["user_id"])))
        ratings = inter["rating"].to_numpy(dtype=np.float32)[order]

    if raw.items is not None:
        item_text = raw.items.set_index("item_id").reindex(item_ids).fillna("").reset_index(drop=True)
    else:
        item_text = pd.DataFrame(index=range(len(item_ids)))
    user_attrs = None
    if raw.users is not None:
        user_attrs = raw.users.set_index("user_id").reindex(user_ids).fillna("").reset_index(drop=True)
    return Dataset(name, user_ids, item_ids, interactions, item_text, user_attrs, ratings, tuple(notices))


def _check_options(duplicates: str, min_user: int, min_item: int) -> None:
    if duplicates not in ("first", "last", "all"):
        raise ValueError(f"duplicates must be 'first', 'last' or 'all', got {duplicates!r}")
    for name, value in (("min_user_interactions", min_user), ("min_item_interactions", min_item)):
        if not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def _suspicious_times(timestamps: np.ndarray, file: str) -> list[str]:
    """Warnings about timestamps that are legal but unlikely: before 1970, in the future, all equal."""
    found = []
    negative = int((timestamps < 0).sum())
    if negative:
        found.append(f"warning: {file}: {negative:,} timestamp(s) before 1970 (negative); is the unit right?")
    future = int((timestamps > time.time() + 86_400).sum())
    if future:
        found.append(f"warning: {file}: {future:,} timestamp(s) in the future; is the unit right (seconds)?")
    if len(timestamps) and 0 <= timestamps.max() < 31_536_000:
        found.append(
            f"warning: {file}: every timestamp is in 1970; are they seconds? (dates like 20160718 need "
            "--timestamp-format %Y%m%d)"
        )
    if len(timestamps) > 1 and (timestamps == timestamps[0]).all():
        found.append(f"warning: {file}: every timestamp is equal; each user's order is the file's order")
    return found


def _k_core(inter: pd.DataFrame, min_user: int, min_item: int) -> pd.DataFrame:
    while min_user > 1 or min_item > 1:
        user_counts = inter["user_id"].map(inter["user_id"].value_counts())
        item_counts = inter["item_id"].map(inter["item_id"].value_counts())
        keep = (user_counts >= min_user) & (item_counts >= min_item)
        if keep.all():
            break
        inter = inter[keep]
    return inter


def _sorted_ids(ids: np.ndarray) -> np.ndarray:
    """Original ids in a stable, human order: numeric when every id is an integer, else lexicographic."""
    ids = np.asarray(ids, dtype=object).astype(str)
    numeric = pd.to_numeric(pd.Series(ids), errors="coerce")
    if numeric.notna().all() and (numeric == np.floor(numeric)).all():
        return ids[np.argsort(numeric.to_numpy(), kind="stable")]
    return np.sort(ids)
