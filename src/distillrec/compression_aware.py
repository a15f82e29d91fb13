"""Compression-aware fine-tuning: a model's weights seen in training as `compress_model` will store them.

Input: a torch module holding the decoded weights of a compressed copy (`distillrec.load` of a compressed folder)
and the copy's codec steps (`codecs.py`). `make_aware` puts a parametrization (`torch.nn.utils.parametrize`) on
every 2-D float parameter or buffer of at least `min_size` values (the arrays `compress_model` encodes), so the
forward pass reads the stored form of the weight while the optimiser updates what stays trainable:

- "int8" / "int4": fake quantisation with a straight-through gradient (Jacob et al., CVPR 2018; Bengio et al.,
  2013): forward = the codec's own per-row rounding (float16 scales included), backward = identity;
- "prune" (alone or before int8 / int4): the pruned entries stay zero (the codec's own choice on the decoded
  weight, `codecs.prune_mask` at `sparsity`), and with int8 / int4 the kept values are fake-quantised as the codec
  stores them, in blocks of `codecs.BLOCK`, none rounded to zero (at least one step: so pruning the result again
  picks the same entries and the blocks stay the same);
- "pq": each row's codes stay fixed and the codebooks train, as RecJPQ trains the sub-item embeddings of fixed
  code assignments (Petrov & Macdonald, WSDM 2024); the decoded table gives both (its pieces are codebook rows);
  with int8 / int4 the codebook rows are fake-quantised, and so are the arrays pq leaves whole.

`fold(module)` then removes the parametrizations, leaving each weight at the value the forward pass used; encoding
that with the same steps stores exactly it (`codecs.encode` finds the codebooks of a table whose pieces take at
most 256 values each), so the compressed model scores as the fine-tuned one did. `lowrank` is not covered
(`supports` says so): its copy is fine-tuned dense and factored again.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from distillrec.codecs import (
    BLOCK,
    check_methods,
    check_steps,
    encodable,
    pq_pieces,
    prune_mask,
    unique_pieces,
)

__all__ = ["supports", "make_aware", "fold", "fake_quantise"]

AWARE = (
    {"int8"},
    {"int4"},
    {"prune"},
    {"prune", "int8"},
    {"prune", "int4"},
    {"pq"},
    {"pq", "int8"},
    {"pq", "int4"},
)


def supports(steps: list[str]) -> bool:
    """Whether `make_aware` covers these codec steps (every combination but those with lowrank or channels)."""
    return set(check_methods(list(steps))) in AWARE


def fake_quantise(x: torch.Tensor, bits: int, nonzero: bool = False) -> torch.Tensor:
    """x (rows, width) rounded per row as `codecs` stores it (symmetric, float16 scales where they fit), with
    the straight-through gradient: the value of the stored codes times their scales, the gradient of x. With
    `nonzero`, a value that would round to 0 in a row that is not all zero takes one step of its sign instead."""
    top = 2 ** (bits - 1) - 1
    with torch.no_grad():
        exact = x.abs().amax(dim=1) / top
        empty = exact == 0
        exact[empty] = 1.0
        half = exact.half()
        normal = bool(torch.isfinite(half).all() and (half >= torch.finfo(torch.float16).tiny).all())
        scale = (
            half.float() if normal else exact
        )  # as `codecs._quantise`: float32 where float16 is too coarse
        codes = torch.clamp(torch.round(x / scale[:, None]), -top, top)
        if nonzero:
            step = torch.where(x >= 0, 1.0, -1.0)
            codes = torch.where((codes == 0) & ~empty[:, None], step, codes)
        stored = codes * scale[:, None]
    return x + (stored - x).detach()


class _Quantised(nn.Module):
    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = bits

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quantise(weight, self.bits)


class _Pruned(nn.Module):
    """The entries the codec prunes from the weight it is put on stay zero; with `bits`, the kept values
    (row-major, as the codec's CSR `values`) are fake-quantised in blocks of `BLOCK`, none to zero."""

    def __init__(self, weight: torch.Tensor, sparsity: float, bits: int | None) -> None:
        super().__init__()
        kept = prune_mask(weight.detach().cpu().numpy(), sparsity)
        self.register_buffer("mask", torch.from_numpy(kept).to(weight.device))
        self.bits = bits

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.bits is None:
            return weight * self.mask
        values = weight[self.mask]  # row-major: the order of the stored values
        blocks = nn.functional.pad(values, (0, -len(values) % BLOCK)).reshape(-1, BLOCK)
        stored = fake_quantise(blocks, self.bits, nonzero=True).reshape(-1)[: len(values)]
        return torch.zeros_like(weight).masked_scatter(self.mask, stored)


class _FixedCodes(nn.Module):
    """weight (rows, width) = the concatenated codebook rows of its fixed codes (with `bits`, fake-quantised per
    row); the codebooks are the trained tensor (`right_inverse` reads them off a weight whose pieces take at most
    256 values each)."""

    def __init__(self, weight: torch.Tensor, subvectors: int, bits: int | None) -> None:
        super().__init__()
        self.bits = bits
        codebooks, codes = unique_pieces(weight.detach().cpu().numpy(), subvectors)
        if codes is None:
            raise ValueError(
                f"pq-aware fine-tuning: a {tuple(weight.shape)} table whose pieces take more than 256 "
                "values each is not a decoded pq table"
            )
        self.register_buffer("codes", torch.from_numpy(codes.astype(np.int64)).to(weight.device))  # (rows, m)
        self.subvectors = subvectors

    def forward(self, codebooks: torch.Tensor) -> torch.Tensor:
        if self.bits is not None:
            codebooks = fake_quantise(codebooks.reshape(-1, codebooks.shape[-1]), self.bits).reshape(
                codebooks.shape
            )
        pieces = codebooks[
            torch.arange(codebooks.shape[0], device=codebooks.device)[None, :], self.codes
        ]  # (rows, m, width / m)
        return pieces.reshape(self.codes.shape[0], -1)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        """The codebooks (m, 256, width / m) of a weight whose pieces are those of the fixed codes."""
        codebooks, codes = unique_pieces(weight.detach().cpu().numpy(), self.subvectors)
        if codes is None or not np.array_equal(codes, self.codes.cpu().numpy()):
            raise ValueError("pq-aware fine-tuning: the weight does not have the fixed codes' pieces")
        return torch.from_numpy(codebooks).to(weight.device, weight.dtype)


def _targets(module: nn.Module, min_size: int) -> list[tuple[nn.Module, str, torch.Tensor]]:
    """(owner, name, tensor) of every 2-D float parameter or saved buffer of at least `min_size` values (what a
    model folder stores, so what `compress_model` encodes; a buffer rebuilt at load is left alone)."""
    found = []
    for owner in module.modules():
        saved = [(n, b) for n, b in owner._buffers.items() if n not in owner._non_persistent_buffers_set]
        for name, tensor in [*owner._parameters.items(), *saved]:
            if tensor is not None and tensor.is_floating_point():
                if encodable(tensor.detach().float().cpu().numpy(), min_size):
                    found.append((owner, name, tensor))
    return found


def make_aware(
    module: nn.Module,
    steps: list[str],
    min_size: int = 1024,
    sparsity: float = 0.5,
    subvectors: int | None = None,
) -> list[str]:
    """Parametrize `module` for `steps` (see the module docstring; `sparsity` and `subvectors` as the copy was
    compressed with); the names of the weights it covers."""
    if not supports(steps):
        raise ValueError(f"compression-aware fine-tuning covers {[sorted(s) for s in AWARE]}, not {steps}")
    steps = check_steps(list(steps))
    bits = 8 if "int8" in steps else 4 if "int4" in steps else None
    names = {id(t): n for n, t in [*module.named_parameters(), *module.named_buffers()]}
    covered = []
    for owner, name, tensor in _targets(module, min_size):
        m = pq_pieces(tuple(tensor.shape), subvectors)
        if "pq" in steps and m is not None:
            parametrize.register_parametrization(owner, name, _FixedCodes(tensor, m, bits), unsafe=True)
        elif "pq" in steps and bits is None:
            continue  # a table pq keeps whole (few rows, or a width the pieces do not divide)
        elif "prune" in steps:
            parametrize.register_parametrization(owner, name, _Pruned(tensor, sparsity, bits))
        else:
            parametrize.register_parametrization(owner, name, _Quantised(bits))
        covered.append(names.get(id(tensor), name))
    return covered


def fold(module: nn.Module) -> None:
    """Remove every parametrization `make_aware` put, each weight left at the value its forward pass gives."""
    for owner in module.modules():
        if parametrize.is_parametrized(owner):
            for name in list(owner.parametrizations.keys()):
                parametrize.remove_parametrizations(owner, name, leave_parametrized=True)
