"""Resolve a dataset argument to a folder: a path, a known name under `DISTILLREC_DATA_DIR`, the user cache, or
a download from the official GroupLens address (checked against a pinned sha256) when the machine is online.

Input: `"ml-100k"`, `"ml-latest-small"`, `"ml-1m"` or a folder path. Output: a `Path` to a folder that
`formats.read_raw` can read.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from distillrec.data.errors import DataError

DATA_DIR_ENV = "DISTILLREC_DATA_DIR"
CACHE_ENV = "DISTILLREC_CACHE_DIR"


@dataclass(frozen=True)
class KnownDataset:
    url: str
    sha256: str
    folder_in_zip: str


KNOWN_DATASETS: dict[str, KnownDataset] = {
    "ml-100k": KnownDataset(
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        "ml-100k",
    ),
    "ml-latest-small": KnownDataset(
        "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
        "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
        "ml-latest-small",
    ),
    "ml-1m": KnownDataset(
        "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        "ml-1m",
    ),
}


def cache_dir() -> Path:
    """The user cache: `$DISTILLREC_CACHE_DIR`, else `$XDG_CACHE_HOME/distillrec`, else `~/.cache/distillrec`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "distillrec"


def resolve_dataset(source: str | Path, download: bool = True) -> Path:
    """Turn a dataset argument into a folder; raise `DataError` saying everything that was tried."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    name = str(source)
    tried = []
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        candidate = Path(data_dir) / name
        if candidate.is_dir():
            return candidate
        tried.append(str(candidate))
    cached = cache_dir() / "datasets" / name
    if cached.is_dir():
        return cached
    tried.append(str(cached))
    if name not in KNOWN_DATASETS:
        local = (
            [p.name for p in Path(data_dir).iterdir() if p.is_dir()]
            if data_dir and Path(data_dir).is_dir()
            else []
        )
        # downloadable, and folders in the data dir
        known = ", ".join(sorted(set(KNOWN_DATASETS) | set(local)))
        raise DataError(
            source, f"no such folder, and not a known dataset name (known: {known}); looked in {tried}"
        )
    if not download:
        raise DataError(source, f"not found in {tried} and downloading is off")
    return _download(name, cached)


def _download(name: str, target: Path) -> Path:
    known = KNOWN_DATASETS[name]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        archive = Path(tmp) / f"{name}.zip"
        try:
            with urllib.request.urlopen(known.url, timeout=60) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, refused, cut-off transfers
            raise DataError(
                name,
                f"not found locally and could not be downloaded from {known.url} ({exc}); "
                f"set {DATA_DIR_ENV} to a folder that holds {name}/ or pass a path",
            ) from None
        digest = sha256_file(archive)
        if digest != known.sha256:
            raise DataError(
                name,
                f"the file downloaded from {known.url} has sha256 {digest}, not the pinned {known.sha256}; not using it",
            )
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        extracted = Path(tmp) / known.folder_in_zip
        if not extracted.is_dir():
            raise DataError(name, f"the archive from {known.url} has no folder {known.folder_in_zip}/")
        os.replace(extracted, target)
    return target


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
