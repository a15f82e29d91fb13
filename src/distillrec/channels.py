"""Structured pruning of hidden channels: whole channels of two-layer feed-forward blocks removed from a state.

A "pair" is found by the state's names and shapes: two 2-D weights `<P>.<a>.weight` (hidden, d_in) and
`<P>.<b>.weight` (d_out, hidden) of one `nn.Sequential` with no other weighted layer between them (what lies
between is taken to be an activation or a dropout), as the transformer blocks' FFNs and a teacher's text adapter
are. A layer is in at most one pair (in a deeper stack the first of two overlapping pairs is kept).

`prune_channels` keeps the `1 - fraction` hidden channels of each pair with the largest ||W_a[i, :]|| *
||W_b[:, i]|| (ties to the lower index) and stores `W_a[kept]`, `b_a[kept]`, `W_b[:, kept]`: a channel removed
contributes W_b[:, i] * act(W_a[i] x + b_a[i]), which is what pruning drops. `expand_channels` puts zeros back (a
zero column of W_b: the channel adds nothing, whatever the activation), so a loaded model has its built shape and
computes what the smaller one would. Storage, not arithmetic, shrinks (as for every codec in `codecs.py`).
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["find_pairs", "prune_channels", "expand_channels"]

_LAYER = re.compile(r"^(.*)\.(\d+)\.(weight|bias)$")


def find_pairs(state: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    """(first, second) layer names (without ".weight") of every pair in `state` (see the module docstring)."""
    layers: dict[str, dict[int, set[str]]] = {}
    for name in state:
        match = _LAYER.match(name)
        if match:
            prefix, index, kind = match.groups()
            layers.setdefault(prefix, {}).setdefault(int(index), set()).add(kind)
    pairs = []
    for prefix, indices in layers.items():
        ordered = sorted(indices)
        used: set[int] = set()
        for a, b in zip(ordered, ordered[1:], strict=False):
            if a in used:
                continue
            first, second = state[f"{prefix}.{a}.weight"], state[f"{prefix}.{b}.weight"]
            if (
                "weight" in indices[a]
                and "weight" in indices[b]
                and first.ndim == 2
                and second.ndim == 2
                and first.shape[0] == second.shape[1]
            ):
                pairs.append((f"{prefix}.{a}", f"{prefix}.{b}"))
                used.update((a, b))
    return sorted(pairs)


def prune_channels(
    state: dict[str, np.ndarray], fraction: float
) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """(the state with `fraction` of each pair's hidden channels removed, per pair {"second", "width", "kept"})."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the fraction of channels to remove must be in [0, 1), got {fraction}")
    pairs = find_pairs(state)
    if not pairs:
        raise ValueError(
            "channels: this model has no pair of linear layers with an activation between them (an FFN) to prune"
        )
    out, record = dict(state), {}
    for first, second in pairs:
        w_a, w_b = state[f"{first}.weight"], state[f"{second}.weight"]
        width = w_a.shape[0]
        n_keep = max(1, width - int(round(fraction * width)))
        importance = np.linalg.norm(w_a, axis=1) * np.linalg.norm(w_b, axis=0)
        kept = np.sort(np.argsort(-importance, kind="stable")[:n_keep])
        out[f"{first}.weight"], out[f"{second}.weight"] = w_a[kept], w_b[:, kept]
        if f"{first}.bias" in state:
            out[f"{first}.bias"] = state[f"{first}.bias"][kept]
        record[first] = {"second": second, "width": int(width), "kept": kept.tolist()}
    return out, record


def expand_channels(state: dict[str, np.ndarray], record: dict[str, dict]) -> dict[str, np.ndarray]:
    """The state `prune_channels` shrank, at its built shapes: removed channels zero."""
    out = dict(state)
    for first, spec in record.items():
        kept, width = np.asarray(spec["kept"], dtype=np.int64), spec["width"]
        w_a, w_b = state[f"{first}.weight"], state[f"{spec['second']}.weight"]
        full_a = np.zeros((width, w_a.shape[1]), dtype=w_a.dtype)
        full_b = np.zeros((w_b.shape[0], width), dtype=w_b.dtype)
        full_a[kept], full_b[:, kept] = w_a, w_b
        out[f"{first}.weight"], out[f"{spec['second']}.weight"] = full_a, full_b
        if f"{first}.bias" in state:
            bias = np.zeros(width, dtype=state[f"{first}.bias"].dtype)
            bias[kept] = state[f"{first}.bias"]
            out[f"{first}.bias"] = bias
    return out
