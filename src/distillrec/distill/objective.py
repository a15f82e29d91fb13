"""The distillation objective: a list of KD method names -> a `CompositeLoss` fed from the teacher's artifacts.

Input: a teacher folder (or `TeacherArtifacts`), term specs (`parse_kd("soft,rd:k=20")`), the CE weight.
Output: `KDObjective`, which `Student.fit(train, valid, objective=...)` binds to the student module; per batch
it returns

    L = a * CE(student, next item) + sum_j w_j(progress) * L_j(student, teacher labels of the same positions)

CE is taken at every window position with a target, each KD term at every position whose input row the
teacher covered (`distill.kd_data`); a batch without a covered position gets CE only. The teacher is never
called: its top-K lists, scores, hidden states and item table are read from the exported arrays.

Methods and default settings (each overridable as `METHOD:key=value:...`, parsed by `losses/spec.py`; every
method is declared in its own file under `losses/` and listed in `losses/registry.py`, and the objective
treats them alike by what they read of the teacher: top-K lists, hidden states, the item table, or nothing per
batch (`losses/method.py`)):

| method | what the student gets | defaults |
|---|---|---|
| soft | Hinton KD over the catalogue: teacher logits = its top-k scores, -inf elsewhere (`full=True`, computed exactly from the top-k columns and the student's log-sum-exp over the catalogue), or a softmax over top-k + negatives only (`full=False`) | weight 1, k = all exported, temperature 1; `t_min`/`t_max` give a confidence-adaptive temperature |
| rd | Tang & Wang 2018: top-k as position-weighted sigmoid positives | weight 1, k 10, lam 5, 10 negatives |
| rrd | DE-RRD 2020: Plackett-Luce on top-k above sampled uninteresting items | weight 0.1 (the loss sums k log-terms), k 10, 50 negatives |
| dllm2rec | Cui et al. 2024: importance-weighted ranking (position, confidence = the teacher's top-k scores, student consistency) | weight 1, k 10, lam 1, 10 negatives |
| hint | FitNets: student hidden -> teacher hidden (learned projection) | weight 1, distance cosine |
| de | DE-RRD 2020's distillation experts: student hidden -> teacher hidden through one of M small MLPs, chosen by the teacher's hidden state (Gumbel-softmax, annealed) | weight 1, 5 experts, distance cosine |
| param_hard | student item table -> PCA of the teacher's item table (whitened, rows ~unit norm like the student's init); `init=true` also starts the table there (`param_hard:init=true:weight=0` = initialisation only) | weight 0.1 |
| param_soft | mean and covariance of the two tables | weight 1 |
| param_init | shorthand for `param_hard:init=true:weight=0`: the student's item table starts at the compressed teacher table, no loss term | |
| ced | DLLM2Rec 2024's collaborative embedding distillation: the student's item vectors become its own plus gamma x a learned projection of the teacher's item table (no loss term; folded into a plain table after training) | gamma 1, linear projection |

Why these: with full-softmax CE present the teacher's top-K mostly matters through its head, so ranking terms
read the top 10 (the RD and DLLM2Rec papers' K); sampled negatives stop the sigmoid terms from being met by
raising every score at once; the KD terms are of CE's order of magnitude at these weights. The
`dllm2rec` confidence uses the teacher's own scores, as no LLM-generated description exists here (the paper
measures the distance between that description and each candidate).
`last_position=True` (default) adds each user's last training row as a KD-only position: the teacher's guess
of the next item after the training sequence, the prediction closest to what the student is tested on. It
applies only when a term reads positions (soft, rd, rrd, dllm2rec, hint): with item-table terms alone
(param_init, param_hard, param_soft) nothing would train that slot, which is the one a sequential student
predicts from at test time, so the windows stay those of plain training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from distillrec.data.interactions import Interactions
from distillrec.distill.kd_data import TeacherLabels
from distillrec.layers.pca import pca_compress
from distillrec.layers.softmax_ce import logsumexp_scores, softmax_ce
from distillrec.losses.composite import CompositeLoss
from distillrec.losses.method import BindContext, HiddenBatch, TableBatch, TopKBatch
from distillrec.losses.registry import KD_METHODS, make_kd_loss
from distillrec.losses.schedules import confidence_weights
from distillrec.losses.spec import TermSpec, method_names, parse_kd
from distillrec.losses.student_scores import scores_at
from distillrec.teachers.export import TeacherArtifacts

__all__ = ["TermSpec", "KDObjective", "parse_kd", "sample_negatives"]

_IGNORE = -100  # a row without a CE target (`softmax_ce` skips negative targets)
_READS_POSITIONS = ("topk", "hidden")  # terms fed per position (the others read the item table or nothing)


def sample_negatives(exclude: torch.Tensor, n_items: int, m: int) -> torch.Tensor:
    """exclude (n, k) distinct int64 items per row -> (n, m) items drawn uniformly from the other n_items - k
    (with replacement): draw r in [0, n_items - k) and step over the excluded items in ascending order."""
    n, k = exclude.shape
    if n_items - k < 1:
        raise ValueError(f"cannot sample negatives outside a top-{k} of only {n_items} items")
    # drawn on the CPU's generator wherever the model trains: the same negatives on every device
    drawn = torch.randint(0, n_items - k, (n, m)).to(exclude.device)  # (n, m)
    ascending = exclude.sort(dim=1).values  # (n, k)
    for j in range(k):
        drawn = drawn + (drawn >= ascending[:, j : j + 1]).long()
    return drawn


class KDObjective:
    """CE plus KD terms read from a teacher folder; see the module docstring."""

    def __init__(
        self,
        teacher: str | Path | TeacherArtifacts,
        terms: list[TermSpec],
        ce_weight: float = 1.0,
        last_position: bool = True,
        change_student: bool = True,
    ) -> None:
        if not terms:
            raise ValueError(f"KDObjective needs at least one KD term; methods: {method_names()}")
        self.artifacts = teacher if isinstance(teacher, TeacherArtifacts) else TeacherArtifacts(teacher)
        self.terms = list(terms)
        self.ce_weight = ce_weight
        # False: the methods that change the student when bound (param_init's table, ced's embedding) leave it as it
        # is (a student fine-tuned from trained weights); their per-batch terms still count
        self.change_student = change_student
        # a KD-only slot needs a term that reads positions (see the module docstring)
        self.last_position = last_position and any(
            KD_METHODS[t.method].reads in _READS_POSITIONS for t in self.terms
        )

    def describe(self) -> dict:
        """What the student learns from; `soft_labels` only where the export holds a blend's (`teachers/export.py`)."""
        blend = self.artifacts.manifest.get("soft_labels")
        return {
            "objective": "kd",
            "teacher": str(self.artifacts.folder),
            **({"soft_labels": blend} if blend else {}),
            "ce_weight": self.ce_weight,
            "last_position": self.last_position,
            "terms": [t.to_json() for t in self.terms],
        }

    def bind(self, train: Interactions, module: nn.Module) -> BoundKD:
        return BoundKD(
            TeacherLabels(self.artifacts, train),
            self.terms,
            self.ce_weight,
            module,
            self.last_position,
            self.change_student,
        )


class BoundKD(nn.Module):
    """The objective attached to one student module and one training set; `forward(module, batch) -> loss`.
    Each term is fed by what its method reads (`losses/method.py`), never by its name."""

    teacher_item_table: torch.Tensor

    def __init__(
        self,
        labels: TeacherLabels,
        terms: list[TermSpec],
        ce_weight: float,
        module: nn.Module,
        last_position: bool,
        change_student: bool = True,
    ) -> None:
        super().__init__()
        self.labels = labels
        self.specs = {t.method: t for t in terms}
        self.methods = {t.method: KD_METHODS[t.method] for t in terms}
        self.n_items = labels.n_items
        self.k = {}
        for spec in terms:
            if self.methods[spec.method].reads == "topk":
                k = labels.top_k if spec.k is None else spec.k
                if k > labels.top_k:
                    raise ValueError(
                        f"{spec.method}: k={k}, but the teacher exported only its top-{labels.top_k}"
                    )
                self.k[spec.method] = k
        self.k_max = max(self.k.values(), default=0)
        losses = {}
        for spec in terms:
            method = self.methods[spec.method]
            if method.loss is None:
                continue
            params = dict(spec.loss_params)
            if spec.confidence != "none":
                params["reduction"] = "none"
            if method.reads == "hidden":
                if labels.artifacts.positions_hidden is None and not last_position:
                    raise ValueError(
                        f"{spec.method} needs the teacher's hidden states: export them per position (position_hidden=True) "
                        "or train with last_position=True (the user's last row has user_hidden)"
                    )
                params.update(student_dim=module.dim, teacher_dim=labels.hidden_dim)
            losses[spec.method] = make_kd_loss(spec.method, **params)
        self.composite = CompositeLoss(
            losses, {n: self.specs[n].weight_schedule() for n in losses}, ce_weight
        )
        reads = {m.reads for m in self.methods.values()}
        teacher_table = None
        if reads & {"table", "embedding"}:
            teacher_table = torch.tensor(
                np.asarray(labels.artifacts.item_embeddings), dtype=torch.float32
            )  # (n_items, dim_t)
        compressed = None
        if "table" in reads:
            compressed = (
                pca_compress(teacher_table, module.dim, whiten=True) * module.dim**-0.5
            )  # (n_items, dim)
            self.register_buffer("teacher_item_table", compressed)
        context = BindContext(teacher_table, compressed)
        # changes to the student's own table first, then to its embedding layer (ced after param_init)
        for reads in ("table", "embedding") if change_student else ():
            for name, method in self.methods.items():
                if method.reads == reads and method.on_bind is not None:
                    method.on_bind(module, context, self.specs[name])
        # a term that normalises over the catalogue at T = 1 shares CE's log-sum-exp, computed once per step
        self.share_lse = any(
            m.shares_ce_lse is not None and m.shares_ce_lse(self.specs[n]) for n, m in self.methods.items()
        )
        self.last_parts: dict[str, torch.Tensor] = {}

    def forward(self, module: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        targets, rows, progress = batch["targets"], batch["rows"], batch["progress"]
        hidden = module(batch["inputs"], batch["users"])  # (batch, seq_len, dim)
        ce_mask = targets >= 0  # (batch, seq_len)
        kd_mask = self.labels.mask(rows)  # (batch, seq_len)
        used = ce_mask | kd_mask
        h = hidden[used]  # (n, dim)
        # CE over the same rows, KD-only rows marked with the ignore index (-100): the mean is then over the rows
        # with a target, as if they were selected. It never builds the (n, n_items) logits (`softmax_ce`).
        ce_targets = torch.where(
            ce_mask[used], targets[used], torch.full_like(targets[used], _IGNORE)
        )  # (n,)
        table = module.item_table()  # (n_items, dim), read once per step by CE and every term
        lse = logsumexp_scores(h, table) if self.share_lse else None  # (n,) or None
        ce = softmax_ce(h, table, ce_targets, lse=lse)
        kd_in = kd_mask[used]  # (n,)
        if not bool(kd_in.any()):
            self.last_parts = {"ce": ce.detach()}
            return self.composite.weights_at(progress)["ce"] * ce
        kd_rows = rows[kd_mask]  # (m,) training rows, in the order of h[kd_in]
        every = bool(kd_in.all())
        h_kd = h if every else h[kd_in]  # (m, dim)
        lse_kd = None if lse is None else (lse if every else lse[kd_in])  # (m,) or None
        items, scores = self.labels.topk(kd_rows, self.k_max) if self.k_max else (None, None)  # (m, k_max)
        kd_inputs, example_weights = {}, {}
        for name in self.composite.terms:
            spec, method = self.specs[name], self.methods[name]
            if method.reads == "topk":
                term_batch = self._topk_batch(name, table, h_kd, items, scores, lse_kd)
                confidence_scores = term_batch.top_scores
            elif method.reads == "hidden":
                term_batch, confidence_scores = self._hidden_batch(spec, h_kd, kd_rows, progress)
            else:  # "table": the whole item table each step
                term_batch, confidence_scores = TableBatch(table, self.teacher_item_table), None
            kd_inputs[name] = method.inputs(term_batch, spec)
            if spec.confidence != "none":
                example_weights[name] = confidence_weights(confidence_scores, spec.confidence, normalize=True)
        total, self.last_parts = self.composite(ce, kd_inputs, progress, example_weights)
        return total

    def _topk_batch(self, name, table, hidden, items, scores, lse) -> TopKBatch:
        """The student's scores on the term's own columns only: the teacher's top-k, then the sampled
        negatives; what a term needs of the whole catalogue it computes in row chunks (`losses/student_scores.py`:
        only on a small catalogue are the (m, n_items) scores built). `lse`: CE's, when shared (`share_lse`)."""
        spec, k = self.specs[name], self.k[name]
        top_items, top_scores = items[:, :k], scores[:, :k]  # (m, k)
        columns = top_items  # (m, c)
        if spec.negatives:
            columns = torch.cat([top_items, sample_negatives(top_items, self.n_items, spec.negatives)], 1)
        slots = torch.arange(columns.shape[1], device=columns.device).expand(columns.shape)  # (m, c)
        return TopKBatch(
            hidden=hidden,
            table=table,
            top_items=top_items,
            top_scores=top_scores,
            student=scores_at(hidden, table, columns),
            top=slots[:, :k],
            negatives=slots[:, k:] if spec.negatives else None,
            lse=lse,
        )

    def _hidden_batch(self, spec, hidden, rows, progress) -> tuple[HiddenBatch, torch.Tensor | None]:
        """The positions whose teacher state was exported, and the teacher's top-k scores there (confidence)."""
        available = self.labels.hidden_mask(rows)  # (m,)
        teacher = self.labels.hidden(rows[available])  # (m', dim_t)
        confidence_scores = None
        if spec.confidence != "none":
            confidence_scores = self.labels.topk(rows[available], self.labels.top_k)[1]
        return HiddenBatch(hidden[available], teacher, progress), confidence_scores
