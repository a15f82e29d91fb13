"""What the language-model loaders (`text_encoder.py`, `gemma.py`) share: the error for a model that cannot be
found, and the switch that keeps the Hugging Face libraries from reaching the network."""

from __future__ import annotations

import os

__all__ = ["ModelNotFoundError", "set_offline"]


class ModelNotFoundError(FileNotFoundError):
    """The model could not be found offline (or downloaded); the message says what was tried and what to do."""


def set_offline() -> None:
    """Set `HF_HUB_OFFLINE=1` and `TRANSFORMERS_OFFLINE=1` (before the Hugging Face libraries are imported)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
