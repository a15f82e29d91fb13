"""PCA compression of an embedding table: (n, dim_t) -> (n, dim) principal-component coordinates.

Used to initialise a small table from a large one (a teacher's item table for a student, text embeddings for an
ID table) and by parameter distillation. Each component's sign is fixed so its largest-|.| loading is positive,
for determinism; with `whiten=True` each column is divided by its standard deviation.
"""

from __future__ import annotations

import torch


def pca_compress(emb: torch.Tensor, dim: int, whiten: bool = False) -> torch.Tensor:
    """(n, dim_t) teacher item embeddings -> (n, dim) principal-component coordinates (see module docstring)."""
    if emb.dim() != 2 or not 1 <= dim <= min(emb.shape):
        raise ValueError(
            f"need a 2-D table and 1 <= dim <= min(n, dim_t); got shape {tuple(emb.shape)}, dim={dim}"
        )
    x = emb.detach().to(torch.float64)
    x = x - x.mean(dim=0, keepdim=True)  # (n, dim_t)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)  # vh: (min(n, dim_t), dim_t)
    components = vh[:dim]  # (dim, dim_t)
    signs = torch.sign(components.gather(1, components.abs().argmax(dim=1, keepdim=True)))  # (dim, 1)
    coords = x @ (components * signs).T  # (n, dim)
    if whiten:
        coords = coords / coords.std(dim=0, keepdim=True).clamp(min=1e-12)
    return coords.to(emb.dtype)
