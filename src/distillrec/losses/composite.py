"""CompositeLoss: the only place where loss weights live (the methods are listed in `losses/registry.py`).

    L = a * L_ce + sum_j w_j * L_kd_j

L_ce is the full-softmax cross-entropy of the student on the ground-truth next item, computed by the caller
(`softmax_ce.softmax_ce`, which never builds the full logits) and passed in as a scalar.
Each weight (a and every w_j) is a float or a schedule `progress -> float` (see `schedules`), evaluated at the
training progress in [0, 1] given to `forward`. A term may also get per-example weights (batch,)
(`schedules.confidence_weights`): then it must be built with reduction="none" and contributes
w_j * mean_b(v_b * l_b). `forward` returns the total and a dict of the unweighted, detached parts
("ce" and each term's name) for logging; `weights_at(progress)` gives the scalar weights used.

Each term's inputs are passed by name, student side included (terms read different student tensors):
`kd_inputs={"soft": {"student_logits": s, "teacher_logits": t}, "hint": {"student_hidden": h, ...}}`, each
dict being the keyword arguments of that loss's forward. `CollaborativeEmbedding` is a model layer, not a term.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

Weight = float | Callable[[float], float]


def _value(weight: Weight, progress: float) -> float:
    return float(weight(progress)) if callable(weight) else float(weight)


class CompositeLoss(nn.Module):
    def __init__(
        self, terms: Mapping[str, nn.Module], weights: Mapping[str, Weight], ce_weight: Weight = 1.0
    ) -> None:
        super().__init__()
        if "ce" in terms:
            raise ValueError("'ce' is reserved for the cross-entropy part; name the term differently")
        if set(terms) != set(weights):
            raise ValueError(f"terms {sorted(terms)} and weights {sorted(weights)} must have the same names")
        self.terms = nn.ModuleDict(dict(terms))
        self.weights = dict(weights)
        self.ce_weight = ce_weight

    def weights_at(self, progress: float) -> dict[str, float]:
        return {"ce": _value(self.ce_weight, progress)} | {
            n: _value(w, progress) for n, w in self.weights.items()
        }

    def forward(
        self,
        ce: torch.Tensor,
        kd_inputs: Mapping[str, Mapping[str, torch.Tensor]],
        progress: float = 0.0,
        example_weights: Mapping[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        for name in list(kd_inputs) + list(example_weights or {}):
            if name not in self.terms:
                raise KeyError(f"no term named {name!r}; terms: {sorted(self.terms)}")
        weights = self.weights_at(progress)
        total, parts = weights["ce"] * ce, {"ce": ce.detach()}
        for name, term in self.terms.items():
            if name not in kd_inputs:
                raise KeyError(f"kd_inputs has no inputs for term {name!r}; terms: {sorted(self.terms)}")
            value = term(**kd_inputs[name])  # scalar, or (batch,) with reduction="none"
            per_example = (example_weights or {}).get(name)
            if per_example is not None:
                if value.dim() != 1 or value.shape != per_example.shape:
                    raise ValueError(
                        f"term {name!r} got per-example weights {tuple(per_example.shape)} but returned shape "
                        f"{tuple(value.shape)}; build it with reduction='none'"
                    )
                value = per_example.detach() * value
            value = value.mean()
            parts[name] = value.detach()
            total = total + weights[name] * value
        return total, parts
