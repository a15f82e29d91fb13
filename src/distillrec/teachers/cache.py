"""`EmbeddingCache`: a content-addressed store of text embeddings, so each text is encoded once per model.

Input: an encoder (anything with `.identity: str`, `.encode(list[str]) -> (n, dim) float32` and `.dim`), the
texts, and an optional `template` string (whatever shaped the texts or the embedding and is not in the text
itself, e.g. `ItemTextTemplate.key` or an instruction prompt). Output: `(len(texts), dim)` float32, row i for
texts[i], identical to `encoder.encode(texts)` up to batching noise (the stored vectors are the encoder's).

Key of one embedding = (encoder identity, template, sha256 of the UTF-8 text). On disk:

    <root>/<sha256(identity \\0 template)[:24]>/   one shard per (identity, template)
        meta.json                                 {"identity", "template", "dim", "format"}
        part-<time>-<pid>-<random>.npz            keys (n, 32) uint8 = text sha256, vectors (n, dim) float32

Parts are only ever added: every `flush_every` newly encoded texts become one part, written to a temporary
file, fsynced, then renamed into place (atomic on POSIX). So an interrupted run keeps every finished part, a
reader never sees half a file, and two processes filling the same shard never overwrite each other (a text
encoded by both is stored twice, with the same vector). `compact()` merges a shard's parts into one.
A second run over the same texts encodes nothing (and need not even load the model: an identity is computed
from the model files); a changed title encodes only that title.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from distillrec.data.download import cache_dir

__all__ = ["EmbeddingCache", "Encoder", "text_key"]

_FORMAT = 1


class Encoder(Protocol):
    @property
    def identity(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def text_key(text: str) -> bytes:
    """sha256 of the UTF-8 text (32 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def _atomic_write(path: Path, write) -> None:
    """Write via `write(file_object)` into a temporary file beside `path`, fsync, then rename onto `path`."""
    tmp = path.parent / f".tmp-{secrets.token_hex(8)}-{path.name}"
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class _Shard:
    """The in-memory index of one shard folder: text key -> (part number, row)."""

    folder: Path
    identity: str
    template: str
    dim: int | None = None
    parts: list[np.ndarray] = field(default_factory=list)  # each (n_part, dim) float32
    loaded: set[str] = field(default_factory=set)  # part file names already read
    index: dict[bytes, tuple[int, int]] = field(default_factory=dict)

    def refresh(self) -> None:
        """Read parts written since the last refresh (by this or another process)."""
        meta_path = self.folder / "meta.json"
        if not meta_path.exists():
            return
        meta = json.loads(meta_path.read_text())
        if meta.get("identity") != self.identity or meta.get("template") != self.template:
            raise ValueError(
                f"embedding cache shard {self.folder} belongs to identity {meta.get('identity')!r} / template "
                f"{meta.get('template')!r}, not {self.identity!r} / {self.template!r}; delete the folder"
            )
        self.dim = int(meta["dim"])
        for path in sorted(self.folder.glob("part-*.npz")):
            if path.name not in self.loaded:
                self._add_part(path)

    def _add_part(self, path: Path) -> None:
        with np.load(path) as data:
            keys, vectors = data["keys"], data["vectors"]
        if keys.ndim != 2 or keys.shape[1] != 32 or vectors.shape != (len(keys), self.dim):
            raise ValueError(
                f"embedding cache part {path} is malformed: keys {keys.shape}, vectors {vectors.shape}, "
                f"expected (n, 32) and (n, {self.dim}); delete it"
            )
        number = len(self.parts)
        self.parts.append(vectors.astype(np.float32, copy=False))
        for row, key in enumerate(keys):
            self.index[key.tobytes()] = (number, row)
        self.loaded.add(path.name)

    def append(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """Store new vectors as one new part (atomically) and index them."""
        if self.dim is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.dim = int(vectors.shape[1])
            meta = {"identity": self.identity, "template": self.template, "dim": self.dim, "format": _FORMAT}
            _atomic_write(self.folder / "meta.json", lambda fh: fh.write(json.dumps(meta, indent=1).encode()))
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
        name = f"part-{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}.npz"
        _atomic_write(self.folder / name, lambda fh: np.savez(fh, keys=key_array, vectors=vectors))
        self._add_part(self.folder / name)


class EmbeddingCache:
    """Encode texts through a persistent cache (see the module docstring).

    root: the cache folder (None: `<distillrec cache dir>/embeddings`, i.e. `$DISTILLREC_CACHE_DIR/embeddings`
    or `~/.cache/distillrec/embeddings`). flush_every: newly encoded texts per stored part (smaller: less work
    lost on an interruption, more files).

    Counters, over the life of this object and counted per distinct text of each call: `hits` (found in the
    cache), `misses` (encoded).
    """

    def __init__(self, root: str | Path | None = None, flush_every: int = 2048) -> None:
        self.root = root
        self.flush_every = flush_every
        self.hits = 0
        self.misses = 0
        self._shards: dict[Path, _Shard] = {}

    @property
    def folder(self) -> Path:
        return Path(self.root).expanduser() if self.root is not None else cache_dir() / "embeddings"

    def shard_folder(self, identity: str, template: str = "") -> Path:
        name = hashlib.sha256(f"{identity}\0{template}".encode()).hexdigest()[:24]
        return self.folder / name

    def _shard(self, identity: str, template: str) -> _Shard:
        folder = self.shard_folder(identity, template)
        if folder not in self._shards:
            self._shards[folder] = _Shard(folder, identity, template)
        shard = self._shards[folder]
        shard.refresh()
        return shard

    def encode(self, encoder: Encoder, texts: Sequence[str], template: str = "") -> np.ndarray:
        """`(len(texts), dim)` float32: stored vectors where present, the encoder's for the rest (then stored)."""
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is a {type(text).__name__}, not a str: {text!r}")
        shard = self._shard(encoder.identity, template)
        keys = [text_key(t) for t in texts]
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in shard.index and key not in missing:
                missing[key] = text
        self.hits += len(set(keys)) - len(missing)
        self.misses += len(missing)
        todo = list(missing.items())
        for start in range(0, len(todo), self.flush_every):
            chunk = todo[start : start + self.flush_every]
            vectors = np.asarray(encoder.encode([text for _, text in chunk]), dtype=np.float32)
            if (
                vectors.ndim != 2
                or len(vectors) != len(chunk)
                or (shard.dim is not None and vectors.shape[1] != shard.dim)
            ):
                raise ValueError(
                    f"encoder {encoder.identity!r} returned shape {vectors.shape} for {len(chunk)} texts; "
                    f"expected ({len(chunk)}, {shard.dim if shard.dim is not None else 'dim'})"
                )
            if not np.isfinite(vectors).all():
                raise ValueError(f"encoder {encoder.identity!r} returned non-finite values; not caching them")
            shard.append([key for key, _ in chunk], vectors)
        dim = shard.dim if shard.dim is not None else encoder.dim
        out = np.empty((len(texts), dim), dtype=np.float32)
        for i, key in enumerate(keys):
            number, row = shard.index[key]
            out[i] = shard.parts[number][row]
        return out

    def compact(self, identity: str, template: str = "") -> int:
        """Merge one shard's parts into a single part; returns the number of parts removed.

        The merged part is written (atomically) before the old ones are deleted, so an interruption leaves
        duplicates, never gaps. Do not run it while another process is writing the same shard.
        """
        shard = self._shard(identity, template)
        old = sorted(shard.folder.glob("part-*.npz"))
        if len(old) <= 1:
            return 0
        keys = list(shard.index)
        vectors = np.stack([shard.parts[n][r] for n, r in shard.index.values()]).astype(np.float32)
        merged = _Shard(shard.folder, identity, template, dim=shard.dim)  # dim set: meta.json is kept
        merged.append(keys, vectors)
        self._shards[shard.folder] = merged
        for path in old:
            path.unlink(missing_ok=True)
        for tmp in shard.folder.glob(".tmp-*"):  # left by interrupted writes
            tmp.unlink(missing_ok=True)
        return len(old)
