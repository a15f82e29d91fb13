"""The distillation objective: a list of KD method names -> a `CompositeLoss` fed from the teacher's artifacts.

Input: a teacher folder (or `TeacherArtifacts`), term specs (`parse_kd("soft,rd:k=20")`), the CE weight.
Output: `KDObjective`, which `Student.fit(train, valid, objective=...)` binds to the student module; per batch
it returns

    L = a * CE(student, next item) + sum_j w_j(progress) * L_j(student, teacher labels of the same positions)

CE is taken at every window position with a target, each KD term at every position whose input row the
teacher covered (`distill.kd_data`); a batch without a covered position gets CE only. The teacher is never
called: its top-K lists, scores, hidden states and item table are read from the exported arrays.

Methods and default settings (each overridable as `METHOD:key=value:...`; the keys every term takes are
`weight`, `schedule` (constant | linear | cosine, from `weight` to `weight_end` over training progress),
`weight_end`, and, for the terms that read top-K lists, `k` (teacher slots used), `negatives` (items sampled
uniformly from outside the teacher's top-k) and `confidence` (none | top1 | entropy: per-example weights
c_b / mean(c), trusting a confident teacher more; `losses.schedules`)):

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

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from distillrec.data.interactions import Interactions
from distillrec.distill.kd_data import TeacherLabels
from distillrec.distill.student_scores import catalogue_ranks, own_topk, scores_at
from distillrec.layers.pca import pca_compress
from distillrec.layers.sasrec import ItemEmbedding
from distillrec.layers.softmax_ce import logsumexp_scores, softmax_ce
from distillrec.losses.collaborative_embedding_kd import CollaborativeEmbedding
from distillrec.losses.composite import KD_LOSSES, CompositeLoss, make_kd_loss
from distillrec.losses.schedules import (
    CONFIDENCE_KINDS,
    ConstantSchedule,
    CosineSchedule,
    LinearSchedule,
    confidence_temperature,
    confidence_weights,
)
from distillrec.teachers.export import TeacherArtifacts

__all__ = ["TermSpec", "KDObjective", "parse_kd", "DEFAULTS", "ALIASES", "sample_negatives"]

DEFAULTS: dict[str, dict[str, Any]] = {
    "soft": {"weight": 1.0, "k": None, "temperature": 1.0, "full": True},
    "rd": {"weight": 1.0, "k": 10, "lam": 5.0, "negatives": 10},
    "rrd": {"weight": 0.1, "k": 10, "negatives": 50},
    "dllm2rec": {"weight": 1.0, "k": 10, "lam": 1.0, "negatives": 10},
    "hint": {"weight": 1.0, "distance": "cosine"},
    "de": {"weight": 1.0},
    "param_hard": {"weight": 0.1},
    "param_soft": {"weight": 1.0},
    "ced": {},
}
# shorthand method names: alias -> (method, default options the user's options override)
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {"param_init": ("param_hard", {"init": True, "weight": 0.0})}
_TOPK_METHODS = ("soft", "rd", "rrd", "dllm2rec")
_TABLE_METHODS = ("param_hard", "param_soft")  # terms on the item table, not on positions
_HIDDEN_METHODS = ("hint", "de")  # terms on the teacher's hidden states
_EMBEDDING_METHODS = ("ced",)  # no loss term: the student's item embedding changes (`CollaborativeEmbedding`)
# the class whose constructor arguments are a method's own options
_OPTION_SOURCE: dict[str, type[nn.Module]] = {**KD_LOSSES, "ced": CollaborativeEmbedding}
_COMMON_KEYS = {"weight", "schedule", "weight_end"}
_TOPK_KEYS = {"k", "negatives", "confidence"}
_SOFT_KEYS = {"full", "t_min", "t_max"}
_PARAM_KEYS = {"init"}
_SCHEDULES = ("constant", "linear", "cosine")
_IGNORE = -100  # a row without a CE target (`softmax_ce` skips negative targets)
# loss constructor arguments set here, not by users
_BUILT_BY_US = frozenset({"reduction", "student_dim", "teacher_dim", "base", "teacher_table"})
_NUMBER = (int, float)
_OPTION_TYPES = {
    "weight": _NUMBER,
    "weight_end": _NUMBER,
    "t_min": _NUMBER,
    "t_max": _NUMBER,
    "k": int,
    "negatives": int,
    "full": bool,
    "init": bool,
    "schedule": str,
    "confidence": str,
    "hidden_dim": int,
}


def _loss_keys(method: str) -> set[str]:
    # nn.Module's *args, **kwargs
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {
        name
        for name, p in inspect.signature(_OPTION_SOURCE[method].__init__).parameters.items()
        if name not in {"self", *_BUILT_BY_US} and p.kind not in variadic
    }


def _check_type(method: str, key: str, value: Any) -> None:
    """A wrong type is an error naming the option (a loss parameter is checked against its default's type)."""
    expected = _OPTION_TYPES.get(key)
    if expected is None:
        default = inspect.signature(_OPTION_SOURCE[method].__init__).parameters[key].default
        if default is None or default is inspect.Parameter.empty:
            return
        expected = _NUMBER if isinstance(default, float) else type(default)
    if value is None and key in ("weight_end", "t_min", "t_max", "k", "hidden_dim"):
        return
    if isinstance(value, bool) and expected is not bool or not isinstance(value, expected):
        names = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
        raise ValueError(f"{method}: option {key}={value!r} must be {names}")


def _valid_keys(method: str) -> set[str]:
    if method in _EMBEDDING_METHODS:  # no loss term: nothing to weight or schedule
        return _loss_keys(method)
    keys = _COMMON_KEYS | _loss_keys(method)
    if method in _TOPK_METHODS:
        keys |= _TOPK_KEYS
    if method == "soft":
        keys |= _SOFT_KEYS
    if method == "param_hard":
        keys |= _PARAM_KEYS
    if method in _HIDDEN_METHODS:
        keys |= {"confidence"}
    return keys


@dataclass(frozen=True)
class TermSpec:
    """One KD term, fully resolved (defaults filled in)."""

    method: str
    weight: float = 1.0
    schedule: str = "constant"
    weight_end: float | None = None
    k: int | None = None  # teacher top-k slots (None: all exported); top-K methods only
    negatives: int = 0
    confidence: str = "none"
    full: bool = True  # soft only
    t_min: float | None = None  # soft only: confidence-adaptive temperature in [t_min, t_max]
    t_max: float | None = None
    init: bool = False  # param_hard only: start the student's item table at the compressed teacher table
    loss_params: dict = field(default_factory=dict)

    @staticmethod
    def make(method: str, **options: Any) -> TermSpec:
        """Defaults of `method` overridden by `options`; an unknown method or key is an error naming the valid ones."""
        if method in ALIASES:
            method, preset = ALIASES[method]
            options = {**preset, **options}
        if method not in DEFAULTS:
            raise ValueError(
                f"unknown KD method {method!r}; choose from {sorted([*DEFAULTS, *ALIASES])} (or 'ce:weight=...')"
            )
        valid = _valid_keys(method)
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for KD method {method!r}; valid: {sorted(valid)}")
        for key, value in options.items():
            _check_type(method, key, value)
        merged = {**DEFAULTS[method], **options}
        loss_params = {key: merged.pop(key) for key in list(merged) if key in _loss_keys(method)}
        spec = TermSpec(method=method, loss_params=loss_params, **merged)
        spec._check()
        return spec

    def _check(self) -> None:
        if self.schedule not in _SCHEDULES:
            raise ValueError(f"{self.method}: schedule={self.schedule!r} is not one of {list(_SCHEDULES)}")
        if self.schedule != "constant" and self.weight_end is None:
            raise ValueError(f"{self.method}: schedule={self.schedule!r} needs weight_end")
        if self.confidence not in ("none", *CONFIDENCE_KINDS):
            raise ValueError(
                f"{self.method}: confidence={self.confidence!r} is not one of {['none', *CONFIDENCE_KINDS]}"
            )
        if self.k is not None and self.k < 1:
            raise ValueError(f"{self.method}: k must be >= 1, got {self.k}")
        if self.negatives < 0:
            raise ValueError(f"{self.method}: negatives must be >= 0, got {self.negatives}")
        if (self.t_min is None) != (self.t_max is None):
            raise ValueError(
                f"{self.method}: give both t_min and t_max for an adaptive temperature, or neither"
            )
        if self.method == "soft" and self.full and self.negatives:
            raise ValueError("soft: negatives apply only with full=false (full=true already uses every item)")

    def weight_schedule(self):
        if self.schedule == "constant":
            return ConstantSchedule(self.weight)
        cls = LinearSchedule if self.schedule == "linear" else CosineSchedule
        return cls(self.weight, self.weight_end)

    def to_json(self) -> dict:
        """The resolved options that apply to this method (e.g. no `k` for hint), loss defaults included."""
        own = sorted(_valid_keys(self.method) - _loss_keys(self.method))
        signature = inspect.signature(_OPTION_SOURCE[self.method].__init__).parameters
        loss = {key: signature[key].default for key in sorted(_loss_keys(self.method))} | self.loss_params
        return {"method": self.method} | {key: getattr(self, key) for key in own} | loss


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_kd(spec: str) -> tuple[list[TermSpec], float]:
    """'soft:temperature=2,rd:k=20,ce:weight=0.5' -> (term specs, CE weight). Methods are comma-separated;
    options follow their method as `:key=value`."""
    terms: list[TermSpec] = []
    ce_weight = 1.0
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        method, *pairs = part.split(":")
        options: dict[str, Any] = {}
        for pair in pairs:
            if "=" not in pair:
                raise ValueError(f"option {pair!r} of {method!r} is not key=value (e.g. soft:temperature=2)")
            key, value = pair.split("=", 1)
            options[key.strip()] = _parse_value(value.strip())
        if method == "ce":
            if set(options) - {"weight"}:
                raise ValueError(f"'ce' takes only weight=..., got {sorted(options)}")
            ce_weight = float(options.get("weight", 1.0))
            continue
        term = TermSpec.make(method, **options)
        if any(t.method == term.method for t in terms):
            raise ValueError(
                f"KD method {term.method!r} given twice (param_init is param_hard with init=true)"
            )
        terms.append(term)
    if not terms:
        raise ValueError(f"no KD method in {spec!r}; choose from {sorted([*DEFAULTS, *ALIASES])}")
    return terms, ce_weight


def sample_negatives(exclude: torch.Tensor, n_items: int, m: int) -> torch.Tensor:
    """exclude (n, k) distinct int64 items per row -> (n, m) items drawn uniformly from the other n_items - k
    (with replacement): draw r in [0, n_items - k) and step over the excluded items in ascending order."""
    n, k = exclude.shape
    if n_items - k < 1:
        raise ValueError(f"cannot sample negatives outside a top-{k} of only {n_items} items")
    drawn = torch.randint(0, n_items - k, (n, m))  # (n, m)
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
    ) -> None:
        if not terms:
            raise ValueError(f"KDObjective needs at least one KD term; methods: {sorted(DEFAULTS)}")
        self.artifacts = teacher if isinstance(teacher, TeacherArtifacts) else TeacherArtifacts(teacher)
        self.terms = list(terms)
        self.ce_weight = ce_weight
        # a KD-only slot needs a term that reads positions (see the module docstring)
        self.last_position = last_position and any(
            t.method not in (*_TABLE_METHODS, *_EMBEDDING_METHODS) for t in self.terms
        )

    def describe(self) -> dict:
        return {
            "objective": "kd",
            "teacher": str(self.artifacts.folder),
            "ce_weight": self.ce_weight,
            "last_position": self.last_position,
            "terms": [t.to_json() for t in self.terms],
        }

    def bind(self, train: Interactions, module: nn.Module) -> BoundKD:
        return BoundKD(
            TeacherLabels(self.artifacts, train), self.terms, self.ce_weight, module, self.last_position
        )


def _init_item_table(module: nn.Module, table: torch.Tensor) -> None:
    """Copy `table` (n_items, dim) into the student's stored item table; a computed table (e.g. a text tower)
    cannot be initialised and is an error."""
    target = module.item_table()
    stored = isinstance(target, nn.Parameter) or isinstance(getattr(target, "_base", None), nn.Parameter)
    if not stored or target.shape != table.shape:
        raise ValueError(
            f"param_hard:init=true needs a student whose item_table() is a stored (n_items, dim) parameter; "
            f"{type(module).__name__}'s is {'computed' if not stored else tuple(target.shape)}"
        )
    with torch.no_grad():
        target.copy_(table.to(target.dtype))


def _wrap_item_embedding(module: nn.Module, teacher_table, options: dict) -> None:
    """`ced`: replace the student's `ItemEmbedding` by `CollaborativeEmbedding` over the teacher's item table; a
    student whose item table is not an `ItemEmbedding` (MF's, the two-tower's text tower) is an error."""
    base = getattr(module, "item_embedding", None)
    if not isinstance(base, ItemEmbedding):
        has = "has none" if base is None else f"is {type(base).__name__}"
        raise ValueError(
            f"ced needs a student whose item_embedding is an ItemEmbedding (sasrec, gru4rec); "
            f"{type(module).__name__}'s {has}"
        )
    table = torch.tensor(np.asarray(teacher_table), dtype=torch.float32)  # (n_items, dim_t)
    module.item_embedding = CollaborativeEmbedding(base, table, **options)


class BoundKD(nn.Module):
    """The objective attached to one student module and one training set; `forward(module, batch) -> loss`."""

    teacher_item_table: torch.Tensor

    def __init__(
        self,
        labels: TeacherLabels,
        terms: list[TermSpec],
        ce_weight: float,
        module: nn.Module,
        last_position: bool,
    ) -> None:
        super().__init__()
        self.labels = labels
        self.specs = {t.method: t for t in terms}
        self.n_items = labels.n_items
        self.k = {}
        for spec in terms:
            if spec.method in _TOPK_METHODS:
                k = labels.top_k if spec.k is None else spec.k
                if k > labels.top_k:
                    raise ValueError(
                        f"{spec.method}: k={k}, but the teacher exported only its top-{labels.top_k}"
                    )
                self.k[spec.method] = k
        self.k_max = max(self.k.values(), default=0)
        losses = {}
        for spec in terms:
            if spec.method in _EMBEDDING_METHODS:
                continue
            per_example = spec.confidence != "none"
            params = dict(spec.loss_params)
            if per_example:
                params["reduction"] = "none"
            if spec.method in _HIDDEN_METHODS:
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
        if any(m in self.specs for m in ("param_hard", "param_soft")):
            table = torch.tensor(
                np.asarray(labels.artifacts.item_embeddings), dtype=torch.float32
            )  # (n_items, dim_t)
            compressed = pca_compress(table, module.dim, whiten=True) * module.dim**-0.5  # (n_items, dim)
            self.register_buffer("teacher_item_table", compressed)
            if "param_hard" in self.specs and self.specs["param_hard"].init:
                _init_item_table(module, compressed)
        if "ced" in self.specs:  # after any initialisation of the student's own table (ced,param_init)
            _wrap_item_embedding(module, labels.artifacts.item_embeddings, self.specs["ced"].loss_params)
        soft = self.specs.get("soft")
        # soft over the catalogue at a constant T = 1 normalises by CE's log-sum-exp: computed once, shared
        self.share_lse = (
            soft is not None
            and soft.full
            and soft.t_min is None
            and soft.loss_params.get("temperature") == 1.0
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
        for method in self.composite.terms:
            spec = self.specs[method]
            inputs, confidence_scores = self._term_inputs(
                method, spec, table, h_kd, kd_rows, items, scores, lse_kd
            )
            if method == "de":  # its Gumbel temperature anneals over training
                inputs["progress"] = progress
            kd_inputs[method] = inputs
            if spec.confidence != "none":
                example_weights[method] = confidence_weights(
                    confidence_scores, spec.confidence, normalize=True
                )
        total, self.last_parts = self.composite(ce, kd_inputs, progress, example_weights)
        return total

    def _term_inputs(self, method, spec, table, hidden, rows, items, scores, lse=None):
        """(keyword inputs of the loss, teacher top-k scores of its examples for confidence weighting).

        A top-k term gets the student's scores on its own columns only, the teacher's top-k then the sampled
        negatives, and item indices into those columns; what it needs of the whole catalogue comes in row
        chunks (`student_scores`, see there: only on a small catalogue are the (m, n_items) scores built).
        `lse` (m,): the student's catalogue log-sum-exp at T = 1, when CE has computed it (`share_lse`)."""
        if method in self.k:
            k = self.k[method]
            top_items, top_scores = items[:, :k], scores[:, :k]  # (m, k)
            columns = top_items  # (m, c) the items whose student scores the term reads
            if spec.negatives:
                columns = torch.cat([top_items, sample_negatives(top_items, self.n_items, spec.negatives)], 1)
            student = scores_at(hidden, table, columns)  # (m, c)
            slots = torch.arange(columns.shape[1]).expand(columns.shape)  # (m, c) column indices
            top, negatives = slots[:, :k], (slots[:, k:] if spec.negatives else None)
            inputs: dict[str, Any] = {"student_logits": student}
            if method == "soft":
                if spec.t_min is not None:
                    inputs["temperature"] = confidence_temperature(top_scores, spec.t_min, spec.t_max)
                if spec.full:  # the teacher's logits are -inf outside its top-k: normalise over the catalogue
                    if lse is None:  # not shared with CE (T != 1)
                        t = inputs.get("temperature", spec.loss_params.get("temperature", 1.0))
                        lse = logsumexp_scores(hidden, table, temperature=t)  # (m,) over scores / T
                    inputs.update(teacher_logits=top_scores, student_lse=lse)
                else:
                    inputs.update(
                        teacher_topk_items=top, teacher_topk_scores=top_scores, negative_items=negatives
                    )
            elif method == "rd":
                inputs.update(teacher_topk_items=top, negative_items=negatives)
                if self.composite.terms["rd"].mu is not None:
                    inputs["student_ranks"] = catalogue_ranks(hidden, table, top_items)
            elif method == "rrd":
                inputs.update(teacher_topk_items=top, uninteresting_items=negatives)
            else:  # dllm2rec
                own = own_topk(hidden, table, k)  # (m, k)
                inputs.update(
                    teacher_topk_items=top,
                    confidence=top_scores,
                    negative_items=negatives,
                    in_student_topk=(top_items.unsqueeze(2) == own.unsqueeze(1)).any(dim=2),
                )
            return inputs, top_scores
        if method in _HIDDEN_METHODS:
            available = self.labels.hidden_mask(rows)  # (m,)
            teacher = self.labels.hidden(rows[available])  # (m', dim_t)
            confidence_scores = None
            if spec.confidence != "none":
                confidence_scores = self.labels.topk(rows[available], self.labels.top_k)[1]
            return {"student_hidden": hidden[available], "teacher_hidden": teacher}, confidence_scores
        # param_hard / param_soft: the whole item table each step
        return {"student_item_emb": table, "teacher_compressed": self.teacher_item_table}, None
