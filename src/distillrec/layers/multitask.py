"""The bottoms of multi-task models: how several tasks share one input representation.

- `SharedBottom`: one MLP whose output every task's tower reads (Caruana, 1997).
- `MMoE`: `n_experts` MLPs and, per task, a softmax gate over them computed from the input; task t reads the
  gate-weighted sum of the experts' outputs (Ma et al., KDD 2018, "Modeling Task Relationships in Multi-task
  Learning with Multi-gate Mixture-of-Experts").

Both map (batch, in_dim) to a list of `n_tasks` tensors of shape (batch, hidden); `last_shared()` gives the
weights of the last layer the tasks share.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SharedBottom", "MMoE", "make_bottom", "BOTTOMS"]

BOTTOMS = ("shared", "mmoe")


def _mlp(in_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU()
    )


class SharedBottom(nn.Module):
    def __init__(self, in_dim: int, hidden: int, n_tasks: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_tasks = n_tasks
        self.mlp = _mlp(in_dim, hidden, dropout)

    def last_shared(self) -> list[nn.Parameter]:
        """The weights of the last layer every task reads (what GradNorm measures gradients at)."""
        return [self.mlp[3].weight]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        shared = self.mlp(x)
        return [shared] * self.n_tasks


class MMoE(nn.Module):
    def __init__(
        self, in_dim: int, hidden: int, n_tasks: int, n_experts: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if n_experts < 1:
            raise ValueError(f"MMoE needs at least one expert, got n_experts={n_experts}")
        self.experts = nn.ModuleList(_mlp(in_dim, hidden, dropout) for _ in range(n_experts))
        self.gates = nn.ModuleList(nn.Linear(in_dim, n_experts) for _ in range(n_tasks))

    def last_shared(self) -> list[nn.Parameter]:
        """The weights of the experts' last layers, which every task reads through its gate."""
        return [expert[3].weight for expert in self.experts]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        experts = torch.stack([expert(x) for expert in self.experts], dim=1)  # (batch, n_experts, hidden)
        weights = [
            torch.softmax(gate(x), dim=-1).unsqueeze(-1) for gate in self.gates
        ]  # (batch, n_experts, 1)
        return [(w * experts).sum(dim=1) for w in weights]


def make_bottom(kind: str, in_dim: int, hidden: int, n_tasks: int, n_experts: int = 4, dropout: float = 0.0):
    if kind == "shared":
        return SharedBottom(in_dim, hidden, n_tasks, dropout)
    if kind == "mmoe":
        return MMoE(in_dim, hidden, n_tasks, n_experts, dropout)
    raise ValueError(f"bottom must be one of {', '.join(BOTTOMS)}, got {kind!r}")
