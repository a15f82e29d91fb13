"""Manifests: what produced an artifact folder (resolved config, input hashes, versions), as `manifest.json`.

A stage compares the manifest of an existing folder with the one it would write to decide whether its inputs
changed; reports read them to say how every number was made.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

_PACKAGES = (
    "distillrec",
    "torch",
    "numpy",
    "scipy",
    "pandas",
    "implicit",
    "sentence-transformers",
    "transformers",
)


def dataset_fingerprint(dataset) -> str:
    """sha256 over a prepared dataset's interactions and ids: changes when any row or id changes."""
    digest = hashlib.sha256()
    inter = dataset.interactions
    for array in (inter.users, inter.items, inter.timestamps):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update("\x00".join(map(str, dataset.item_ids)).encode())
    digest.update("\x00".join(map(str, dataset.user_ids)).encode())
    return digest.hexdigest()


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def build_manifest(config: dict, inputs=None) -> dict:
    manifest = {
        "config": config,
        "versions": versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if inputs is not None:
        manifest["dataset"] = {
            "name": inputs.name,
            "fingerprint": dataset_fingerprint(inputs),
            "users": inputs.n_users,
            "items": inputs.n_items,
            "interactions": len(inputs.interactions),
        }
    return manifest


def write_manifest(folder: Path, config: dict, inputs=None) -> Path:
    path = Path(folder) / "manifest.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(build_manifest(config, inputs), indent=2, default=str))
    tmp.replace(path)
    return path


def record_in_manifest(folder: Path, key: str, entry: dict, inputs) -> Path:
    """Add `entry` under `config.models[key]` of `folder/manifest.json` and write it, keeping the entries of
    earlier runs into the same folder (e.g. `distillrec baselines --models sasrec` after the other baselines)
    when they were made from the same data; a manifest of other data is replaced."""
    path = Path(folder) / "manifest.json"
    models: dict = {}
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("dataset", {}).get("fingerprint") == dataset_fingerprint(inputs):
            models = _model_entries(old.get("config", {}))
    models[key] = entry
    return write_manifest(folder, {"models": models}, inputs=inputs)


def _model_entries(config: dict) -> dict:
    """`config.models` of a manifest as {model: entry}; an older manifest listed one run's models as a list, with
    their options at the top and their grids under `grids`."""
    models = config.get("models")
    if isinstance(models, dict):
        return dict(models)
    if not isinstance(models, list):
        return {}
    common = {k: v for k, v in config.items() if k not in ("models", "grids")}
    return {name: {**common, "grid": config.get("grids", {}).get(name)} for name in models}
