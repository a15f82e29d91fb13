"""Full-softmax scores without the (positions x items) matrix: the log-sum-exp over the catalogue, computed in
row chunks, and the next-item cross-entropy built on it.

    logsumexp_scores(h, E)[r] = log sum_i exp(h_r . e_i)
    softmax_ce(h, E, t)        = mean over rows r with a target of  logsumexp_i(h_r . e_i) - h_r . e_{t_r}

over every item i of the catalogue (or over `candidates` only), for hidden states h (n, d) and the item table
E (n_items, d). The plain `F.cross_entropy(h @ E.T, t)` writes the (n, n_items) logits, their log-softmax and
its gradient to memory: for a batch of 128 windows of 50 positions over ml-latest-small's 9,724 items that is
three tensors of up to 250 MB, and on this CPU the loss was memory-bound and most of a training step
(BENCHMARKS.md, section 3). Here the forward keeps only each row's log-sum-exp; the backward recomputes each
chunk's logits (a small GEMM that stays in cache) and turns them into the gradient at once:

    d lse_r / d h_r = softmax(h_r E^T) E,    d lse_r / d E = softmax(h_r E^T)^T h_r

The target's score h_r . e_{t_r} is an ordinary gather, differentiated by autograd. The soft-label KD term
reads the same log-sum-exp, of the scores / T, as its student's normaliser (`distill.objective`); at T = 1 it
is CE's own, computed once and passed to both (`softmax_ce(..., lse=)`).
Same values and gradients as the plain forms up to float rounding (tests/test_losses.py); under bf16 autocast
the chunk GEMMs run in bfloat16 and the softmax in float32, as the plain form's would.
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 1 << 18  # logits per chunk (1 MB in float32): rows per chunk = this // n_items, at least 1


def logsumexp_scores(
    hidden: torch.Tensor,
    table: torch.Tensor,
    candidates: torch.Tensor | None = None,
    temperature: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """hidden (n, d), table (n_items, d), candidates (n_items,) bool or None, temperature T (a float or (n,),
    a constant) or None -> (n,) log sum_i exp(h_r . e_i / T_r) over the catalogue (over the candidates only, if
    given); float32 (float64 for float64 inputs), differentiable in `hidden` and `table`. The scores are
    divided by T after the GEMM, in float32, as a caller dividing the (rounded) scores s_i by T would."""
    if hidden.dim() != 2 or table.dim() != 2 or hidden.shape[1] != table.shape[1]:
        raise ValueError(
            f"hidden (n, d) and table (n_items, d) expected, got {tuple(hidden.shape)} and {tuple(table.shape)}"
        )
    inverse_t = None
    if temperature is not None:
        t = torch.as_tensor(temperature, dtype=_accumulate(hidden), device=hidden.device).detach()
        t = t.expand(hidden.shape[0]) if t.dim() == 0 else t  # (n,)
        if t.shape != hidden.shape[:1] or bool((t <= 0).any()):
            raise ValueError(f"temperature must be > 0, a float or of shape ({hidden.shape[0]},)")
        inverse_t = 1.0 / t  # (n,)
    if candidates is not None:
        candidates = candidates.to(hidden.device)  # a CPU mask also serves a model on a GPU
    return _ChunkedLogSumExp.apply(hidden, table, candidates, inverse_t)


def softmax_ce(
    hidden: torch.Tensor,
    table: torch.Tensor,
    targets: torch.Tensor,
    candidates: torch.Tensor | None = None,
    lse: torch.Tensor | None = None,
) -> torch.Tensor:
    """hidden (n, d), table (n_items, d), targets (n,) int64 item indices (negative: the row has no target and
    does not count), candidates (n_items,) bool or None -> scalar mean cross-entropy over the rows with a target
    (0 when there is none). With `candidates`, the softmax runs over those items only. `lse` (n,): the rows'
    `logsumexp_scores(hidden, table, candidates)`, when the caller has computed it already for another use
    (the soft KD term at T = 1 shares it); then it is not computed again, and not checked: it must come from
    the same `hidden`, `table` and `candidates`."""
    if targets.shape != hidden.shape[:1]:
        raise ValueError(f"targets must have shape ({hidden.shape[0]},), got {tuple(targets.shape)}")
    valid = targets >= 0  # (n,)
    if lse is not None and lse.shape != targets.shape:
        raise ValueError(f"lse must have shape ({hidden.shape[0]},), got {tuple(lse.shape)}")
    if not bool(valid.any()):
        return hidden.sum() * 0.0 + table.sum() * 0.0  # both stay in the graph, with zero gradients
    h, t = hidden[valid], targets[valid]  # (n', d), (n',)
    lse = logsumexp_scores(h, table, candidates) if lse is None else lse[valid]  # (n',)
    picked = _rounded_dot(h, table[t]).to(lse.dtype)  # (n',) the target's score
    if candidates is not None:  # a target outside the candidates has probability 0: an infinite loss
        picked = picked.masked_fill(~candidates.to(t.device)[t], -torch.inf)
    return (lse - picked).mean()


def autocast_operands(hidden: torch.Tensor, table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Under CPU autocast, float32 `hidden` and `table` cast once to the autocast dtype (float64 stays, as
    autocast leaves it), so chunked GEMMs do not cast the whole table per chunk; otherwise both unchanged."""
    if not torch.is_autocast_enabled("cpu"):
        return hidden, table
    low = torch.get_autocast_dtype("cpu")
    return tuple(t.to(low) if t.dtype == torch.float32 else t for t in (hidden, table))


def _rounded_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, d), (n, d) -> (n,) row-wise dot products, rounded as the chunk GEMMs round the scores they are
    compared with: under autocast, inputs and result in its dtype (products summed in float32)."""
    if not torch.is_autocast_enabled("cpu") or torch.float32 not in (a.dtype, b.dtype):
        return (a * b).sum(dim=1)
    low = torch.get_autocast_dtype("cpu")
    a, b = (x.to(low).float() for x in (a, b))
    return (a * b).sum(dim=1).to(low).float()


class _ChunkedLogSumExp(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, hidden, table, candidates, inverse_t):
        ctx.dtypes = hidden.dtype, table.dtype
        hidden, table = autocast_operands(hidden, table)
        lse = torch.empty(hidden.shape[0], dtype=_accumulate(hidden), device=hidden.device)  # (n,)
        for rows in row_chunks(hidden.shape[0], table.shape[0]):
            lse[rows] = torch.logsumexp(
                _chunk_logits(hidden[rows], table, candidates, inverse_t, rows), dim=1
            )
        ctx.save_for_backward(hidden, table, lse, candidates, inverse_t)
        return lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad):
        hidden, table, lse, candidates, inverse_t = ctx.saved_tensors
        grad = grad.to(lse.dtype)  # (n,)
        if inverse_t is not None:
            grad = grad * inverse_t  # d(s / T) = ds / T
        want_hidden, want_table = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        on = {"dtype": lse.dtype, "device": lse.device}
        grad_hidden = torch.zeros(hidden.shape, **on) if want_hidden else None
        grad_table = torch.zeros(table.shape, **on) if want_table else None
        for rows in row_chunks(hidden.shape[0], table.shape[0]):
            h = hidden[rows]  # (c, d)
            g = _chunk_logits(h, table, candidates, inverse_t, rows).sub_(lse[rows, None]).exp_()  # softmax
            g.mul_(grad[rows, None])
            if want_hidden:
                grad_hidden[rows] = g @ table
            if want_table:
                grad_table += g.T @ h
        return (
            None if grad_hidden is None else grad_hidden.to(ctx.dtypes[0]),
            None if grad_table is None else grad_table.to(ctx.dtypes[1]),
            None,
            None,
        )


def row_chunks(n_rows: int, n_items: int) -> list[slice]:
    """Row slices of at most CHUNK_ELEMENTS // n_items rows (at least 1): the blocks whose (rows, n_items) scores
    are computed at once."""
    step = max(1, CHUNK_ELEMENTS // max(1, n_items))
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def _chunk_logits(hidden, table, candidates, inverse_t=None, rows=slice(None)) -> torch.Tensor:
    """(c, n_items) scores of the chunk's rows `hidden`, in float32 (float64), divided by T, masked."""
    logits = (hidden @ table.T).to(_accumulate(hidden))  # (c, n_items)
    if inverse_t is not None:
        logits = logits * inverse_t[rows, None]
    if candidates is not None:
        logits = logits.masked_fill(~candidates, -torch.inf)
    return logits


def _accumulate(hidden: torch.Tensor) -> torch.dtype:
    """float64 for float64 inputs (exact tests), float32 otherwise (bfloat16 GEMM outputs included)."""
    return torch.float64 if hidden.dtype == torch.float64 else torch.float32
