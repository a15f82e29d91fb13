"""Align a teacher's exported outputs with a student's training windows: the distillation loop's only view
of the teacher (read from disk, memory-mapped; the teacher model is never loaded or called).

Input: `TeacherArtifacts` (`teachers/export.py`: arrays whose row r belongs to training row r, in the order
of the training `Interactions`) and the student's window `rows` (batch, seq_len): the training row of the input
item at each window position, -1 at padding (`students.base.make_windows`).
Output: for the positions that have teacher labels, the teacher's top-K items and scores (and hidden states).

The alignment rule. Train row r is user u's t-th item. At the window position whose input is row r, the
student's state has read u's items up to and including row r and is trained to predict row r + 1's item (its
CE target). The teacher's exported row r is its top-K at row r in one causal pass over u's last `max_len`
training items, as it saw them in training: its state there has read the same rows (up to row r). Positions
count back from the window's end, so this is the teacher's training-time output at r, not its output on a
history cut at r. So the soft labels of row r belong to the
position whose input is row r, whatever the student's window length. The last training row of a user has
teacher labels (a prediction of the item after the training sequence) but no CE target; a window built with
`last_position=True` includes it as a KD-only position.

Masking: rows the teacher did not cover (`positions_topk_items[r, 0] == -1`, i.e. before the teacher's
window) and padding positions carry no KD term. Hidden states: `positions_hidden[r]` when the teacher exported
them; otherwise only the user's last training row has one (`user_hidden[u]`).
"""

from __future__ import annotations

import numpy as np
import torch

from distillrec.data.interactions import Interactions
from distillrec.teachers.export import TeacherArtifacts

__all__ = ["TeacherLabels"]


class TeacherLabels:
    """Teacher labels indexed by training row, checked against the training data they must belong to."""

    def __init__(self, artifacts: TeacherArtifacts, train: Interactions) -> None:
        manifest = artifacts.manifest
        expected = {"n_train": len(train), "n_users": train.n_users, "n_items": train.n_items}
        found = {key: manifest.get(key) for key in expected}
        if found != expected:
            raise ValueError(
                f"teacher artifacts in {artifacts.folder} were exported for {found}, but the training data has "
                f"{expected}: the teacher must be built on the same dataset and split"
            )
        self.artifacts = artifacts
        self.top_k = int(artifacts.positions_topk_items.shape[1])
        self.n_items = train.n_items
        self.covered = np.asarray(artifacts.positions_topk_items[:, 0]) >= 0  # (n_train,)
        last_rows = train.indptr[1:] - 1  # (n_users,) last training row of each user (-1 if none)
        has_rows = np.diff(train.indptr) > 0
        self.has_hidden = np.zeros(len(train), dtype=bool)  # (n_train,)
        self.row_user = train.users.astype(np.int64)  # (n_train,)
        if artifacts.positions_hidden is not None:
            self.has_hidden[:] = True
        else:
            self.has_hidden[last_rows[has_rows]] = True
        self.hidden_dim = int(artifacts.user_hidden.shape[1])

    @property
    def coverage(self) -> float:
        return float(self.covered.mean()) if len(self.covered) else 0.0

    def mask(self, rows: torch.Tensor) -> torch.Tensor:
        """rows (batch, seq_len) int64, -1 = padding -> (batch, seq_len) bool: position has teacher labels."""
        safe = rows.clamp(min=0).cpu().numpy()
        return (rows >= 0) & torch.from_numpy(self.covered[safe]).to(rows.device)

    def hidden_mask(self, rows: torch.Tensor) -> torch.Tensor:
        """rows (n,) covered rows -> (n,) bool: a teacher hidden state exists for the row."""
        return torch.from_numpy(self.has_hidden[rows.cpu().numpy()]).to(rows.device)

    def topk(self, rows: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """rows (n,) covered training rows -> items (n, k) int64, scores (n, k) float32, best first."""
        if not 1 <= k <= self.top_k:
            raise ValueError(
                f"asked for the teacher's top-{k}, but the artifacts hold top-{self.top_k} per row"
            )
        index = rows.cpu().numpy()
        items = torch.from_numpy(np.asarray(self.artifacts.positions_topk_items[index, :k], dtype=np.int64))
        scores = torch.from_numpy(
            np.asarray(self.artifacts.positions_topk_scores[index, :k], dtype=np.float32)
        )
        if items.numel() and int(items.min()) < 0:
            raise ValueError(
                "topk() was given a row the teacher did not cover; filter rows with mask() first"
            )
        return items.to(rows.device), scores.to(rows.device)

    def hidden(self, rows: torch.Tensor) -> torch.Tensor:
        """rows (n,) with `hidden_mask` True -> (n, teacher_dim) float32 teacher hidden states."""
        index = rows.cpu().numpy()
        if not self.has_hidden[index].all():
            raise ValueError(
                "hidden() was given rows without a teacher hidden state; filter with hidden_mask()"
            )
        if self.artifacts.positions_hidden is not None:
            states = np.asarray(self.artifacts.positions_hidden[index], dtype=np.float32)
        else:
            states = np.asarray(self.artifacts.user_hidden[self.row_user[index]], dtype=np.float32)
        return torch.from_numpy(states).to(rows.device)
