"""distillrec: distil pretrained language models into small, fast recommenders.

The public API (everything else is reachable through its modules, without a promise of stability):

    model = distillrec.load("runs/<run>/students/<label>/model")   # any saved model folder
    model.recommend(user="196", k=10)                               # [(item_id, score), ...]
    model.recommend(history=["50", "172", "133"], k=10)
    model.recommend_batch(histories, k=10)

Names are imported on first use, so `import distillrec` (and loading a config) does not import torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load": "distillrec.recommend",
    "SavedModel": "distillrec.recommend",
    "Request": "distillrec.recommend",
    "Recommendation": "distillrec.recommend",
    "ModelFolderError": "distillrec.artifact",
    "save_model": "distillrec.artifact",
    "Catalog": "distillrec.artifact",
    "RunConfig": "distillrec.config",
    "load_config": "distillrec.config",
    "run_pipeline": "distillrec.pipeline",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'distillrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
