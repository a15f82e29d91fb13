"""ESMM (Ma et al., SIGIR 2018, "Entire Space Multi-Task Model"): a click head and a conversion head over one
bottom, trained on every impression through pCTCVR = pCTR x pCVR, so pCVR is learnt over the whole impression
space without training on clicks alone (the sample selection bias ESMM removes).

Inputs of the bottom, per (user, item) impression:
- learned id vectors of the user and the item (`dim` each) and their element-wise product;
- with `item_text` (a teacher): the item's language-model embedding and the user's text profile (the mean
  embedding of the items the user clicked in training, `user_text`; a training impression passes `profiles`,
  the mean over the clicks before its time: `multitask/profiles.py`), both frozen and mapped to `dim` by one
  learned linear adapter, and their product. This is how the teacher carries what the language model knows of
  the items beside the collaborative signal; a student reads ids only.

`forward(users, items)` returns the two logits (click, conversion given a click); `probabilities` turns them
into pCTR, pCVR and pCTCVR.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from distillrec.layers.multitask import make_bottom

__all__ = ["ESMM", "probabilities", "log_ctcvr"]


class ESMM(nn.Module):
    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 16,
        hidden: int = 32,
        bottom: str = "mmoe",
        n_experts: int = 4,
        dropout: float = 0.0,
        item_text: np.ndarray | None = None,
        user_text: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        if (item_text is None) != (user_text is None):
            raise ValueError("item_text and user_text come together (a teacher) or not at all (a student)")
        self.user_ids = nn.Embedding(n_users, dim)
        self.item_ids = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user_ids.weight, std=0.05)
        nn.init.normal_(self.item_ids.weight, std=0.05)
        self.has_text = item_text is not None
        parts = 3
        if self.has_text:
            if item_text.shape[0] != n_items or user_text.shape != (n_users, item_text.shape[1]):
                raise ValueError(
                    f"item_text must be ({n_items}, d) and user_text ({n_users}, d), got {item_text.shape} "
                    f"and {user_text.shape}"
                )
            self.register_buffer("item_text", torch.as_tensor(item_text, dtype=torch.float32))
            self.register_buffer("user_text", torch.as_tensor(user_text, dtype=torch.float32))
            self.adapter = nn.Linear(item_text.shape[1], dim)
            parts = 6
        self.bottom = make_bottom(bottom, parts * dim, hidden, 2, n_experts, dropout)
        self.towers = nn.ModuleList(
            nn.Sequential(
                nn.Linear(hidden, max(hidden // 2, 1)), nn.ReLU(), nn.Linear(max(hidden // 2, 1), 1)
            )
            for _ in range(2)
        )

    def forward(
        self, users: torch.Tensor, items: torch.Tensor, profiles: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(click logit, conversion-given-click logit), each (batch,). `profiles` (batch, d): each row's user
        text profile, in place of the user's whole-training one (a teacher; a student ignores it)."""
        u, i = self.user_ids(users), self.item_ids(items)
        parts = [u, i, u * i]
        if self.has_text:
            profile = self.user_text[users] if profiles is None else profiles
            ut, it = self.adapter(profile), self.adapter(self.item_text[items])
            parts += [ut, it, ut * it]
        tasks = self.bottom(torch.cat(parts, dim=-1))
        ctr, cvr = (tower(x).squeeze(-1) for tower, x in zip(self.towers, tasks, strict=True))
        return ctr, cvr

    def last_shared(self) -> list[nn.Parameter]:
        """The bottom's last shared weights (GradNorm's task gradients are measured there)."""
        return self.bottom.last_shared()

    def n_params(self) -> int:
        """Trained parameters (the frozen text tables of a teacher are buffers, not counted)."""
        return sum(p.numel() for p in self.parameters())


def log_ctcvr(ctr_logit: torch.Tensor, cvr_logit: torch.Tensor) -> torch.Tensor:
    """log pCTCVR = log sigmoid(click logit) + log sigmoid(conversion logit), stable for any logits."""
    return F.logsigmoid(ctr_logit) + F.logsigmoid(cvr_logit)


def probabilities(ctr_logit: torch.Tensor, cvr_logit: torch.Tensor) -> dict[str, torch.Tensor]:
    """{"ctr", "cvr", "ctcvr"}: pCTR, pCVR (conversion given a click) and pCTCVR = pCTR x pCVR."""
    ctr, cvr = torch.sigmoid(ctr_logit), torch.sigmoid(cvr_logit)
    return {"ctr": ctr, "cvr": cvr, "ctcvr": ctr * cvr}
