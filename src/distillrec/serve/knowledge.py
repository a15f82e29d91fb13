"""What the server knows of items' text, read from the teacher folder a student was distilled from.

A teacher folder (`stages/teacher.py`) holds each item's rendered text (`item_texts.txt`), its language-model
vector (`text_embeddings.npy`), the template and encoder that made them (`manifest.json`) and the teacher itself
(`model/`). From these the server shows titles, finds items by their words, encodes a new item's text exactly as
the known items were encoded, compares items in the language model's space, and asks the teacher how it ranks an
item. `find_teacher` locates the folder of a model folder: the teacher its KD objective names, else a `teacher/`
folder of the run that holds it (`runs/<run>/students/<label>/model` -> `runs/<run>/teacher`).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from distillrec.recommend import SavedModel, load
from distillrec.teachers.text import ItemTextTemplate
from distillrec.teachers.text_encoder import TextEncoder

__all__ = ["TextKnowledge", "find_teacher"]


def find_teacher(model_dir: Path, info: dict) -> Path | None:
    """The teacher folder of the model saved in `model_dir` (whose manifest info is `info`), or None."""
    named = (info.get("objective") or {}).get("teacher")
    candidates = [Path(named)] if named else []
    candidates += [parent / "teacher" for parent in list(model_dir.resolve().parents)[:4]]
    candidates += [model_dir.resolve().parent]  # the teacher's own model: <teacher>/model
    for folder in candidates:
        if (folder / "manifest.json").is_file() and (folder / "text_embeddings.npy").is_file():
            return folder
    return None


class TextKnowledge:
    """The text side of a teacher folder (see the module docstring); `item_ids` are its items, in order."""

    def __init__(self, folder: str | Path, load_teacher: bool = True) -> None:
        self.folder = Path(folder)
        manifest_path = self.folder / "manifest.json"
        try:
            config = json.loads(manifest_path.read_text())["config"]
            self.template = ItemTextTemplate.from_key(config["template"])
            self.encoder_name = config["teacher"]["encoder"]
            if (
                self.folder / "tuned_encoder" / "tuning.json"
            ).is_file():  # tuned for recommendation: that one
                self.encoder_name = str(self.folder / "tuned_encoder")
            self.encoder_bf16 = bool(config["teacher"].get("encoder_bf16", False))
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{manifest_path}: not a teacher manifest with config.template and config.teacher.encoder ({exc})"
            ) from None
        self.texts = (self.folder / "item_texts.txt").read_text(encoding="utf-8").splitlines()
        self.text_vectors = np.load(self.folder / "text_embeddings.npy").astype(
            np.float32
        )  # (n_items, d_text)
        if len(self.texts) != len(self.text_vectors):
            raise ValueError(
                f"{self.folder}: {len(self.texts)} lines in item_texts.txt but {len(self.text_vectors)} rows in "
                "text_embeddings.npy"
            )
        self.teacher: SavedModel | None = None
        if load_teacher and (self.folder / "model" / "manifest.json").is_file():
            self.teacher = load(self.folder / "model")
            self.item_ids = [str(i) for i in self.teacher.catalog.item_ids]
        else:
            self.item_ids = (
                None  # the teacher's ids are unknown without its model folder: aligned by position
            )
        self._encoder: TextEncoder | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return int(self.text_vectors.shape[1])

    def check_items(self, item_ids: list[str], model_dir: Path) -> None:
        """An error unless the teacher's items are the model's, in the same order."""
        same = self.item_ids == item_ids if self.item_ids is not None else len(self.texts) == len(item_ids)
        if not same:
            raise ValueError(
                f"{self.folder} is the teacher of other items than {model_dir} ({len(self.texts):,} against "
                f"{len(item_ids):,}); give the teacher folder the model was trained with (--teacher) or --no-teacher"
            )

    def render(self, fields: dict[str, str]) -> str:
        """A new item's text, rendered as the known items were (fields the template names and lacks: empty)."""
        row = {name: fields.get(name) for name in self.template.fields}
        return self.template.render(row)

    def encode(self, text: str) -> np.ndarray:
        """(d_text,) float32: `text` through the teacher's text encoder, as its item texts went."""
        with self._lock:  # one load, and one forward pass at a time
            if self._encoder is None:
                self._encoder = TextEncoder(self.encoder_name, bf16=self.encoder_bf16, progress=False)
            return self._encoder.encode([text])[0]

    def load_encoder(self) -> None:
        """Load the encoder now (a server does it at start, so the first posted item does not wait for it)."""
        self.encode("warm-up")
