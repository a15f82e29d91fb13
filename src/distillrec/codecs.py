"""Array codecs for compressed model folders: an array -> smaller named parts, and back.

A codec is a list of steps applied in order; decoding undoes them in reverse:

- "prune": magnitude pruning, unstructured: the `sparsity` fraction of entries smallest in |value| become 0,
  and the matrix is stored sparse (CSR: `indptr`, `indices`, `values`), so the zeros take no space;
- "lowrank": truncated SVD, W ~ A @ B with A (n, r) = U_r S_r and B (r, m) = V_r^T; r is `rank`, or the
  smallest rank keeping `energy` of the squared singular values; used only when r (n + m) < n m;
- "int8": symmetric per-row quantisation, q = round(x / s), s = max|row| / 127, q in [-127, 127]; a vector is
  quantised in blocks of `BLOCK` values, each with its scale;
- "int4": the same with s = max|row| / 7, two values packed per byte;
- "pq": product quantisation (Jegou et al., TPAMI 2011; for item tables RecJPQ, Petrov & Macdonald, WSDM 2024):
  each row is cut into `subvectors` pieces, each piece replaced by the nearest of 256 centroids learned by k-means
  over that piece across the rows (faiss), so a row is `subvectors` bytes plus the shared codebooks
  (`codebooks` (subvectors, 256, width / subvectors) float32, `codes` (rows, subvectors) uint8); used only on
  tables with at least 1,024 rows whose width the number of pieces divides. A table whose pieces already take
  at most 256 values each (a decoded pq table, fine-tuned with its codes fixed) is stored exactly. "pq,int8" /
  "pq,int4": the codebooks quantised per row, and the arrays pq leaves whole (linear layers) quantised.
int8 / int4 apply to every float part the earlier steps made (the pruned values, the low-rank factors).
Scales are stored as float16 when every row's fits (else float32); codes are computed with the stored scale. `encode` returns the parts and a JSON spec; `decode(parts, spec)` the float32 array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "STEPS",
    "CHANNELS",
    "encode",
    "decode",
    "check_steps",
    "check_methods",
    "encodable",
    "pq_pieces",
    "prune_mask",
    "unique_pieces",
]

STEPS = ("prune", "lowrank", "pq", "int8", "int4")  # the order they apply in
CHANNELS = "channels"  # structured pruning of a whole model's FFN channels (`channels.py`), before the steps
PQ_MIN_ROWS = 1024  # fewer rows than this: 256 centroids a piece would cost more than they save
BLOCK = 64  # values per scale when a vector is quantised


def check_steps(steps: list[str]) -> list[str]:
    """Steps in their applied order; an unknown or conflicting step is an error naming the valid ones."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown compression method(s) {unknown}; choose from {list(STEPS)}")
    if len(set(steps)) < len(steps):
        raise ValueError(f"a compression method is given twice: {steps}")
    if "int8" in steps and "int4" in steps:
        raise ValueError("int8 and int4 are two widths of one quantisation: give one")
    if "prune" in steps and "lowrank" in steps:
        raise ValueError("prune and lowrank both restructure the matrix: give one")
    if "pq" in steps and ("prune" in steps or "lowrank" in steps):
        raise ValueError("pq replaces every row by one-byte codes: give it alone or followed by int8 / int4")
    return sorted(steps, key=STEPS.index)


def check_methods(methods: list[str]) -> list[str]:
    """A compression method's parts in their applied order: "channels" (structured pruning, `channels.py`)
    first, then the codec steps (`check_steps`); an unknown or conflicting one is an error naming the valid ones."""
    unknown = [m for m in methods if m not in (*STEPS, CHANNELS)]
    if unknown:
        raise ValueError(f"unknown compression method(s) {unknown}; choose from {[*STEPS, CHANNELS]}")
    steps = check_steps([m for m in methods if m != CHANNELS])
    if CHANNELS not in methods:
        return steps
    if methods.count(CHANNELS) > 1:
        raise ValueError(f"a compression method is given twice: {methods}")
    if "prune" in steps or "lowrank" in steps:
        raise ValueError(
            "channels prunes by --sparsity too: give it with int8 / int4 / pq, not prune / lowrank"
        )
    return [CHANNELS, *steps]


def encode(
    array: np.ndarray,
    steps: list[str],
    sparsity: float = 0.5,
    rank: int | None = None,
    energy: float = 0.95,
    subvectors: int | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(parts, spec) of a 2-D float array; see the module docstring."""
    steps = check_steps(list(steps))
    x = np.asarray(array, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"codecs take 2-D arrays, got shape {x.shape}")
    spec: dict[str, Any] = {"shape": list(x.shape), "steps": []}
    parts: dict[str, np.ndarray] = {"matrix": x}
    for step in steps:
        if step == "prune":
            if not 0.0 <= sparsity < 1.0:
                raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
            kept = prune_mask(x, sparsity)
            rows, cols = np.nonzero(kept)
            indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=x.shape[0]))])
            index_type = np.int16 if x.shape[1] <= np.iinfo(np.int16).max else np.int32
            parts = {"indptr": indptr.astype(np.int64), "indices": cols.astype(index_type), "values": x[kept]}
            spec["steps"].append({"step": "prune", "sparsity": float(1 - kept.mean())})
        elif step == "lowrank":
            u, s, vt = np.linalg.svd(x, full_matrices=False)
            r = rank if rank is not None else int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), energy) + 1)
            r = max(1, min(r, len(s)))
            if r * sum(x.shape) >= x.size:  # no smaller than the matrix itself: keep it whole
                continue
            parts = {"a": (u[:, :r] * s[:r]).astype(np.float32), "b": vt[:r].astype(np.float32)}
            spec["steps"].append(
                {"step": "lowrank", "rank": r, "energy": float(np.sum(s[:r] ** 2) / np.sum(s**2))}
            )
        elif step == "pq":
            m = pq_pieces(x.shape, subvectors)
            if m is None:
                continue  # a small matrix, or a width the pieces do not divide: kept whole
            parts = _product_quantise(x, m)
            spec["steps"].append({"step": "pq", "subvectors": m})
        else:  # int8 / int4 on every float part
            bits = 8 if step == "int8" else 4
            quantised, shapes = {}, {}
            for name, part in parts.items():
                if part.dtype != np.float32:
                    quantised[name] = part
                    continue
                rows = part.reshape(-1, part.shape[-1]) if part.ndim > 2 else part  # pq's codebook rows
                quantised[f"{name}.q"], quantised[f"{name}.scale"] = _quantise(rows, bits)
                shapes[name] = list(part.shape)
            parts = quantised
            spec["steps"].append({"step": step, "parts": shapes})
    return parts, spec


def decode(parts: dict[str, np.ndarray], spec: dict[str, Any]) -> np.ndarray:
    """The float32 array that `encode` made `parts` and `spec` from (up to the loss of its steps)."""
    shape = tuple(spec["shape"])
    parts = dict(parts)
    for step in reversed(spec["steps"]):
        name = step["step"]
        if name in ("int8", "int4"):
            bits = 8 if name == "int8" else 4
            for base, part_shape in step["parts"].items():
                codes, scale = parts.pop(f"{base}.q"), parts.pop(f"{base}.scale")
                parts[base] = _dequantise(codes, scale, bits, tuple(part_shape))
        elif name == "lowrank":
            parts = {"matrix": parts["a"] @ parts["b"]}
        elif name == "pq":
            codebooks, codes = parts["codebooks"], parts["codes"].astype(np.int64)  # (m, 256, w), (n, m)
            pieces = codebooks[np.arange(codebooks.shape[0])[None, :], codes]  # (n, m, w)
            parts = {"matrix": pieces.reshape(codes.shape[0], -1)}
        elif name == "prune":
            matrix = np.zeros(shape, dtype=np.float32)
            indptr = parts["indptr"]
            rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
            matrix[rows, parts["indices"].astype(np.int64)] = parts["values"]
            parts = {"matrix": matrix}
    matrix = parts["matrix"]
    if matrix.shape != shape:
        raise ValueError(f"decoded shape {matrix.shape}, expected {shape}")
    return matrix.astype(np.float32)


def encodable(x: np.ndarray, min_size: int) -> bool:
    """Whether a model's array is one to encode: 2-D float of at least `min_size` values, and not a mask of 0s
    and 1s (which ids have a learned row, ...)."""
    return x.dtype.kind == "f" and x.ndim == 2 and x.size >= min_size and not np.isin(x, (0.0, 1.0)).all()


def pq_pieces(shape: tuple[int, ...], subvectors: int | None = None) -> int | None:
    """The pieces "pq" cuts each row of a (rows, width) table into (`subvectors`, default width / 4: 4 values a
    byte), or None where it keeps the table whole (under `PQ_MIN_ROWS` rows, or a width the pieces do not
    divide)."""
    m = subvectors if subvectors is not None else max(1, shape[1] // 4)
    return None if shape[0] < PQ_MIN_ROWS or shape[1] % m else m


def prune_mask(x: np.ndarray, sparsity: float) -> np.ndarray:
    """The entries "prune" keeps (bool, x's shape): all but exactly round(sparsity * size) smallest in |x|."""
    n_zero = int(round(sparsity * x.size))
    kept = np.ones(x.size, dtype=bool)
    if n_zero:
        kept[np.argpartition(np.abs(x).ravel(), n_zero - 1)[:n_zero]] = False
    return kept.reshape(x.shape)


def unique_pieces(x: np.ndarray, m: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(codebooks (m, 256, d / m) float32, codes (n, m) uint8) that give x (n, d) exactly, when each of its m
    pieces takes at most 256 distinct values (unused codebook rows are zero); else (None, None)."""
    n, d = x.shape
    width = d // m
    codebooks = np.zeros((m, 256, width), dtype=np.float32)
    codes = np.empty((n, m), dtype=np.uint8)
    for j in range(m):
        values, inverse = np.unique(x[:, j * width : (j + 1) * width], axis=0, return_inverse=True)
        if len(values) > 256:
            return None, None
        codebooks[j, : len(values)], codes[:, j] = values, inverse.ravel()
    return codebooks, codes


def _product_quantise(x: np.ndarray, m: int) -> dict[str, np.ndarray]:
    """{"codebooks": (m, 256, d / m) float32, "codes": (n, m) uint8} of x (n, d): exact where `unique_pieces`
    finds them, else by faiss' k-means."""
    codebooks, codes = unique_pieces(x, m)
    if codes is not None:
        return {"codebooks": codebooks, "codes": codes}
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("pq needs faiss: pip install -e '.[serve]' (or faiss-cpu)") from exc
    quantiser = faiss.ProductQuantizer(x.shape[1], m, 8)
    quantiser.cp.min_points_per_centroid = 1  # small tables are fine to cluster; no warning for them
    quantiser.train(np.ascontiguousarray(x))
    codes = quantiser.compute_codes(np.ascontiguousarray(x))  # (n, m) uint8
    codebooks = faiss.vector_to_array(quantiser.centroids).reshape(m, 256, x.shape[1] // m)
    return {"codebooks": codebooks.astype(np.float32), "codes": codes.astype(np.uint8)}


def _quantise(x: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes, scales): per row for a matrix, per block of `BLOCK` for a vector; int4 codes packed in pairs."""
    top = 2 ** (bits - 1) - 1  # 127 or 7
    rows = x if x.ndim == 2 else np.pad(x, (0, -len(x) % BLOCK)).reshape(-1, BLOCK)
    exact = np.abs(rows).max(axis=1) / top  # (n_rows,)
    exact[exact == 0] = 1.0  # an all-zero row: codes 0
    half = exact.astype(np.float16)
    # float16 scales (2 bytes a row) unless a row is too large or too small for them (subnormal: too coarse to
    # give its largest value the top code): then float32
    normal = np.isfinite(half).all() and (half >= np.finfo(np.float16).tiny).all()
    store = half if normal else exact.astype(np.float32)
    scale = store.astype(np.float32)
    codes = np.clip(np.rint(rows / scale[:, None]), -top, top).astype(np.int8)
    if bits == 4:
        flat = (codes.ravel() + 8).astype(np.uint8)  # 1..15
        flat = np.pad(flat, (0, len(flat) % 2))
        codes = (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)
    return codes, store  # float16: 2 bytes a row, so a 32-wide int8 row is 34 bytes, not 36


def _dequantise(codes: np.ndarray, scale: np.ndarray, bits: int, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 array of `shape` that `_quantise` made `codes` and `scale` from."""
    n_rows = len(scale)
    if bits == 4:
        flat = np.empty(2 * len(codes), dtype=np.int16)
        flat[0::2], flat[1::2] = codes & 0x0F, codes >> 4
        codes = flat - 8
    width = int(np.prod(shape)) // n_rows if len(shape) >= 2 else BLOCK
    values = (
        codes.ravel()[: n_rows * width].astype(np.float32).reshape(n_rows, width)
        * scale.astype(np.float32)[:, None]
    )
    return values.ravel()[: int(np.prod(shape))].reshape(shape)
