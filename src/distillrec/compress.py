"""Compress a saved model folder: its large arrays stored smaller, the model unchanged for `load` and `recommend`.

Input: a model folder (`artifact.py`), the methods (`codecs.py`: int8, int4, prune, lowrank, or prune / lowrank
followed by int8 / int4; or pq, product quantisation of tables, alone or followed by int8 / int4; and "channels",
structured pruning of whole FFN channels at `sparsity` (`channels.py`), alone or followed by int8 / int4 / pq)
and their settings. Output: a new model folder whose weights and array parameters keep every array that
`codecs.encodable` names (2-D float, at least `min_size` values as built, not a 0/1 mask: embedding tables, linear
layers, EASE's item-item matrix, factor tables, a teacher's frozen text table) as its encoded parts, when that is
smaller; the rest is copied. Loading decodes the arrays to float32, so the compressed model scores with the same
code as the original: what shrinks is the size on disk (and what a server has to ship), not the arithmetic.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from distillrec.artifact import MANIFEST, WEIGHTS, finish_folder, read_model, write_state
from distillrec.channels import expand_channels, prune_channels
from distillrec.codecs import CHANNELS, check_methods, encodable, encode

__all__ = ["CompressedArray", "CompressionResult", "compress_model"]


@dataclass(frozen=True)
class CompressedArray:
    name: str
    shape: tuple[int, ...]
    bytes_before: int
    bytes_after: int
    steps: list[dict] = field(default_factory=list)  # each step's record (rank, sparsity kept, ...)


@dataclass(frozen=True)
class CompressionResult:
    folder: Path
    methods: list[str]
    weights_bytes_before: int  # every state array and array parameter (a text table)
    weights_bytes_after: int
    arrays: list[CompressedArray]

    @property
    def ratio(self) -> float:
        return self.weights_bytes_before / max(1, self.weights_bytes_after)


def compress_model(
    source: str | Path,
    out: str | Path,
    methods: list[str],
    sparsity: float = 0.5,
    rank: int | None = None,
    energy: float = 0.95,
    min_size: int = 1024,
    subvectors: int | None = None,
) -> CompressionResult:
    """Write the compressed copy of the model folder `source` to `out` (see the module docstring)."""
    source, out = Path(source), Path(out)
    methods = check_methods(list(methods))
    steps = [m for m in methods if m != CHANNELS]
    if source.resolve() == out.resolve():
        raise ValueError(f"{out}: write the compressed model to another folder than {source}")
    saved = read_model(source)  # checked, arrays decoded
    manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("encoding") or manifest.get("param_encoding") or manifest.get("channels"):
        raise ValueError(
            f"{source}: already compressed ({manifest['info'].get('compression', {}).get('methods')}); compress the original folder"
        )
    if saved.model_class == "OnnxRecommender":
        raise ValueError(
            f"{source}: an ONNX export; compress the model folder it was exported from, then export that"
        )
    settings = {"sparsity": sparsity, "rank": rank, "energy": energy, "subvectors": subvectors}
    arrays: list[CompressedArray] = []

    def compressed(
        values: dict[str, np.ndarray], built: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        """(what to store: kept arrays and encoded parts `<name>#<part>`, each encoded array's spec); an array is
        encoded by its size as built (`built`), so a layer that channel pruning made small is encoded too."""
        stored, encoding = {}, {}
        for name, value in sorted(values.items()):
            if encodable(built[name], min_size):
                parts, spec = encode(value, steps, **settings)
                size = sum(p.nbytes for p in parts.values())
                if spec["steps"] and size < value.nbytes:
                    stored.update({f"{name}#{part}": array for part, array in parts.items()})
                    encoding[name] = spec
                    arrays.append(CompressedArray(name, value.shape, value.nbytes, size, spec["steps"]))
                    continue
            stored[name] = value
        return stored, encoding

    pruned, channels = prune_channels(saved.state, sparsity) if CHANNELS in methods else (saved.state, {})
    shapes = {name: value.shape for name, value in expand_channels(pruned, channels).items()}
    if shapes != {name: value.shape for name, value in saved.state.items()}:  # read back at the built shapes
        raise ValueError(f"{source}: channels: the pruned layers would not read back at their shapes")
    state, encoding = compressed(pruned, saved.state)
    array_params = {n: np.asarray(saved.params[n]) for n in manifest["array_params"]}
    params, param_encoding = compressed(array_params, array_params)
    before = sum(v.nbytes for v in saved.state.values()) + sum(v.nbytes for v in array_params.values())
    after = sum(v.nbytes for v in state.values()) + sum(v.nbytes for v in params.values())
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(WEIGHTS, "state", "params", MANIFEST))
    write_state(tmp, manifest["state_format"], state)
    (tmp / "params").mkdir()
    for name, value in params.items():
        np.save(tmp / "params" / f"{name}.npy", value, allow_pickle=False)
    manifest["encoding"], manifest["param_encoding"] = encoding, param_encoding
    if channels:
        manifest["channels"] = channels  # read back at their built shapes (`artifact.read_model`)
    if channels or ("pq" in steps and len(steps) > 1):  # what a distillrec before format 3 cannot read
        manifest["format_version"] = 3
    manifest["info"] = {
        **manifest.get("info", {}),
        "compression": {
            "source": str(source),
            "methods": methods,
            "settings": {**settings, "min_size": min_size},
            "weights_bytes_before": before,
            "weights_bytes_after": after,
        },
    }
    finish_folder(tmp, manifest, out)
    return CompressionResult(out, methods, before, after, arrays)
