"""`Interactions`: the one in-memory shape of interaction data after id mapping.

Arrays of equal length `(n,)`: `users` and `items` are integer indices (0-based, into the dataset's id maps),
`timestamps` are integer seconds. The rows are always sorted by user, then by timestamp, with equal timestamps
keeping their original file order (a stable sort), so one user's rows form a contiguous, time-ordered block:
`sequences()` gives these blocks as CSR-style `(indptr, items)` and `user_items()` as a binary sparse matrix
of shape `(n_users, n_items)` (rows = users; that orientation is fixed across the project).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True, eq=False)
class Interactions:
    users: np.ndarray  # (n,) int32, sorted
    items: np.ndarray  # (n,) int32
    timestamps: np.ndarray  # (n,) int64
    n_users: int
    n_items: int

    @staticmethod
    def from_arrays(users, items, timestamps, n_users: int, n_items: int) -> Interactions:
        """Build from unsorted arrays; a stable sort by (user, timestamp) keeps the given order on ties."""
        users = np.asarray(users, dtype=np.int32)
        items = np.asarray(items, dtype=np.int32)
        timestamps = np.asarray(timestamps, dtype=np.int64)
        if not (len(users) == len(items) == len(timestamps)):
            raise ValueError("users, items and timestamps must have the same length")
        order = np.lexsort((timestamps, users))  # lexsort is stable: ties keep input order
        return Interactions(users[order], items[order], timestamps[order], int(n_users), int(n_items))

    def __len__(self) -> int:
        return len(self.users)

    @cached_property
    def indptr(self) -> np.ndarray:
        """(n_users + 1,) row pointers: user u's rows are `indptr[u]:indptr[u + 1]`."""
        counts = np.bincount(self.users, minlength=self.n_users)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """`(indptr, items)`: each user's items in time order, CSR-style."""
        return self.indptr, self.items

    def sequence(self, user: int) -> np.ndarray:
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    @cached_property
    def user_items(self) -> sp.csr_matrix:
        """Binary `(n_users, n_items)` CSR matrix; repeated (user, item) pairs count once."""
        data = np.ones(len(self.users), dtype=np.float32)
        mat = sp.csr_matrix((data, (self.users, self.items)), shape=(self.n_users, self.n_items))
        mat.sum_duplicates()
        mat.data[:] = 1.0
        return mat

    def left_padded(self, users: np.ndarray, max_len: int) -> np.ndarray:
        """(len(users), L) int64 left-padded 1-based ids of each user's last `max_len` items (0 = padding),
        L = the longest (at least 1, so a user without items reads one padding position): what a sequence
        model reads for these users."""
        seqs = [self.sequence(int(u))[-max_len:] for u in users]
        width = max(1, max((len(s) for s in seqs), default=1))
        ids = np.zeros((len(users), width), dtype=np.int64)
        for row, seq in enumerate(seqs):
            if len(seq):
                ids[row, width - len(seq) :] = seq.astype(np.int64) + 1
        return ids

    def item_counts(self) -> np.ndarray:
        """(n_items,) number of interactions per item."""
        return np.bincount(self.items, minlength=self.n_items)

    def active_users(self) -> np.ndarray:
        """Indices of users with at least one row."""
        return np.flatnonzero(np.diff(self.indptr) > 0)

    def select(self, mask: np.ndarray) -> Interactions:
        """Rows where `mask` is true (order, and so sortedness, is kept)."""
        return Interactions(
            self.users[mask], self.items[mask], self.timestamps[mask], self.n_users, self.n_items
        )

    def concat(self, other: Interactions) -> Interactions:
        """Rows of both, re-sorted; on equal (user, timestamp) rows of `self` come first."""
        if (self.n_users, self.n_items) != (other.n_users, other.n_items):
            raise ValueError("cannot concatenate interactions over different id spaces")
        return Interactions.from_arrays(
            np.concatenate([self.users, other.users]),
            np.concatenate([self.items, other.items]),
            np.concatenate([self.timestamps, other.timestamps]),
            self.n_users,
            self.n_items,
        )
