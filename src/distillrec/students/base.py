"""The shared student: a small torch recommender trained through `fit_loop` with plain CE or a KD objective.

Input: training `Interactions` (time-ordered per user), optionally `valid` (early stopping on validation
NDCG@10, full ranking, history = train) and an `objective` (default: `CrossEntropy`, full-softmax CE at every
position; `distill.objective.KDObjective` adds distillation terms read from a teacher's exported artifacts).
Output: a fitted `Recommender` whose `score(users, history)` reads each user's last `max_len` history items.

Every student module (`StudentModule`) offers one positional interface, so one training loop and every KD
term serve all students:

    forward(ids (batch, seq_len) left-padded 1-based ids (0 = padding), users (batch,)) -> hidden (batch, seq_len, dim)
        hidden[b, p] is the state after reading the input items up to position p (causal);
    logits(hidden (..., dim)) -> (..., n_items)  the next-item scores;
    item_table() -> (n_items, dim)               the output item vectors (what parameter distillation matches).

Training data (`make_windows`): each user with at least two training items gives one window: the input items,
the next-item targets, and the train row index of each input (`rows`, -1 at padding). `rows` is what a KD
objective uses to look up the teacher's soft labels (see `distill.kd_data`). A window is the user's last
`max_len + 1` items as input `s[:-1]` and target `s[1:]` (as `layers.sasrec.training_windows`); with
`last_position=True` it is the last `max_len` items, the final one a KD-only position (target -1) whose
teacher labels predict the item after the whole training sequence.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

import numpy as np
import torch
from torch import nn

from distillrec.data.interactions import Interactions
from distillrec.devices import module_device
from distillrec.evaluate.ranking import evaluate
from distillrec.layers.sampled_softmax import SampledSoftmax
from distillrec.layers.sasrec import history_windows
from distillrec.layers.softmax_ce import softmax_ce
from distillrec.models.torch_model import TorchRecommender
from distillrec.students.params import StudentTrainParams
from distillrec.train.batches import batch_rows
from distillrec.train.distributed import shard
from distillrec.train.loop import RESUMABLE_CHANGES, EpochEnd, FitResult, TrainConfig, fit_loop

__all__ = ["Student", "StudentModule", "Windows", "make_windows", "CrossEntropy", "Objective"]


class StudentModule(nn.Module):
    """The interface every student's torch module implements (see the module docstring)."""

    dim: int

    @abstractmethod
    def forward(self, ids: torch.Tensor, users: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (..., dim) -> (..., n_items) scores; must equal `hidden @ item_table().T`, which the training
        loss (`layers.softmax_ce`) computes in chunks without calling this."""

    @abstractmethod
    def item_table(self) -> torch.Tensor: ...


@dataclass(frozen=True, eq=False)
class Windows:
    inputs: np.ndarray  # (n_seq, max_len) int64 1-based item ids, 0 = padding, left-padded
    targets: np.ndarray  # (n_seq, max_len) int64 0-based next items, -1 = no target (padding / KD-only)
    rows: np.ndarray  # (n_seq, max_len) int64 train row of each input item, -1 = padding
    users: np.ndarray  # (n_seq,) int64


def make_windows(train: Interactions, max_len: int, last_position: bool = False) -> Windows:
    """One window per user with >= 2 training items (see the module docstring)."""
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    indptr, items = train.sequences()
    users = np.flatnonzero(np.diff(indptr) >= 2)
    inputs = np.zeros((len(users), max_len), dtype=np.int64)
    targets = np.full((len(users), max_len), -1, dtype=np.int64)
    rows = np.full((len(users), max_len), -1, dtype=np.int64)
    for w, user in enumerate(users):
        start, stop = int(indptr[user]), int(indptr[user + 1])
        if last_position:
            first = max(start, stop - max_len)  # inputs: rows first .. stop - 1
            n = stop - first
            inputs[w, max_len - n :] = items[first:stop].astype(np.int64) + 1
            targets[w, max_len - n : max_len - 1] = items[first + 1 : stop]
        else:
            first = max(start, stop - max_len - 1)  # inputs: rows first .. stop - 2
            n = stop - first - 1
            inputs[w, max_len - n :] = items[first : stop - 1].astype(np.int64) + 1
            targets[w, max_len - n :] = items[first + 1 : stop]
        rows[w, max_len - n :] = np.arange(first, first + n)
    return Windows(inputs, targets, rows, users.astype(np.int64))


class Objective(Protocol):
    """What `Student.fit` trains with. `bind` returns a fresh module (its parameters, e.g. a hint
    projection, are trained with the student's); calling it gives the scalar loss of one batch. `bind` may also
    change the student's module it is given (`ced` wraps its item embedding; `Student.fit` folds it back)."""

    last_position: bool

    def bind(self, train: Interactions, module: StudentModule) -> nn.Module: ...

    def describe(self) -> dict: ...


class CrossEntropy:
    """Plain training: full-softmax cross-entropy at every position that has a next-item target; with
    `negatives`, the sampled softmax against that many negatives per batch (`layers/sampled_softmax.py`)."""

    last_position = False

    def __init__(self, negatives: int = 0) -> None:
        self.negatives = negatives

    def bind(self, train: Interactions, module: StudentModule) -> nn.Module:
        return _BoundCrossEntropy(
            SampledSoftmax(train.item_counts(), self.negatives) if self.negatives else None
        )

    def describe(self) -> dict:
        return {"objective": "ce", **({"negatives": self.negatives} if self.negatives else {})}


class _BoundCrossEntropy(nn.Module):
    def __init__(self, sampled: SampledSoftmax | None = None) -> None:
        super().__init__()
        self.sampled = sampled

    def forward(self, module: StudentModule, batch: dict[str, Any]) -> torch.Tensor:
        hidden = module(batch["inputs"], batch["users"])  # (batch, seq_len, dim)
        keep = batch["targets"] >= 0  # (batch, seq_len)
        if self.sampled is not None:
            return self.sampled(hidden[keep], module.item_table(), batch["targets"][keep])
        return softmax_ce(hidden[keep], module.item_table(), batch["targets"][keep])


def _plain_params(params: dict) -> dict:
    """The hyperparameters a checkpoint must match (all but those the training loop lets change on resume):
    arrays (e.g. `text_embeddings`) by shape and checksum."""
    out = {}
    for key, value in params.items():
        if key in RESUMABLE_CHANGES or (key == "negatives" and value == 0):  # 0: as before the option existed
            continue
        if isinstance(value, np.ndarray):
            value = {
                "shape": list(value.shape),
                "sha256": hashlib.sha256(np.ascontiguousarray(value).data).hexdigest(),
            }
        out[key] = value
    return out


class _Trainable(nn.Module):
    """Student and objective in one module, so the optimiser (and a checkpoint) sees both."""

    def __init__(self, student: StudentModule, objective: nn.Module) -> None:
        super().__init__()
        self.student = student
        self.objective = objective


class Student(TorchRecommender):
    """Base class. A subclass names its typed hyperparameters (`params_model`, in `students/params.py`: the
    common training ones of `TrainParams` plus its architecture) and implements
    `_build_module(train) -> StudentModule`; the constructor stores every hyperparameter as an attribute.

    Common training hyperparameters: `max_len` (window and history length), `max_epochs`, `batch_size`, `lr`,
    `weight_decay`, `patience`, `seed`, `num_threads`, `progress`, `eval_every` (as `TrainConfig`). A student may
    also take `length_buckets` (batches of similar window length: less padding, faster epochs) and `bf16`.
    """

    params_model: ClassVar[type[StudentTrainParams]]

    sequential: ClassVar[bool] = True  # False: the state ignores the item sequence (MF)
    needs_text: ClassVar[bool] = False  # True: the constructor takes `text_embeddings` (n_items, d_text)

    max_len: int
    max_epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    patience: int
    seed: int
    num_threads: int | None
    device: str
    negatives: int
    progress: bool
    eval_every: int
    length_buckets: bool = False  # batch windows of similar length (`train/batches.py`); students opt in
    bf16: bool = False  # bfloat16 autocast in training (float32 with a warning on CPUs without it); opt in

    module_: StudentModule

    @abstractmethod
    def _build_module(self, train: Interactions) -> StudentModule: ...

    def _train_config(self) -> TrainConfig:
        return TrainConfig(
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            patience=self.patience,
            eval_every=self.eval_every,
            seed=self.seed,
            bf16=self.bf16,
            device=self.device,
            num_threads=self.num_threads,
            progress=self.progress,
        )

    def fit(
        self,
        train: Interactions,
        valid: Interactions | None = None,
        objective: Objective | None = None,
        callbacks: Sequence[Callable[[EpochEnd], None]] = (),
        checkpoint_dir: str | Path | None = None,
        warm_start: bool = False,
    ) -> Self:
        """Train on `train` with `objective` (default `CrossEntropy()`); with `valid`, keep the epoch of best
        validation NDCG@10 and stop after `patience` evaluations without improvement. `callbacks` go to
        `fit_loop` (e.g. the tuner's pruning callback). With `checkpoint_dir`, every epoch is checkpointed and
        a later call with the same directory resumes where an interrupted one stopped (same result as an
        uninterrupted run); the student's hyperparameters, the objective and the data sizes must be the same.
        With `warm_start`, training continues from the weights the student holds (a fitted or loaded one: a
        compressed copy fine-tuned) instead of new ones; give it an objective made with `change_student=False`
        (`KDObjective`), or param_init / ced change those weights when they are bound."""
        if (
            warm_start and checkpoint_dir is not None
        ):  # a checkpoint does not record the weights it started from
            raise ValueError(
                "warm_start and checkpoint_dir do not go together: a fine-tuning is not resumable"
            )
        config = replace(self._train_config(), checkpoint_dir=checkpoint_dir)
        if objective is None:
            objective = CrossEntropy(self.negatives)
        elif self.negatives and not isinstance(objective, CrossEntropy):
            raise ValueError(
                f"negatives={self.negatives} (sampled softmax) trains students without KD only: the KD objectives "
                "compute the full softmax (set negatives to 0 for a KD student)"
            )
        torch.manual_seed(self.seed)
        if not warm_start:
            self.module_ = self._build_module(train)
        elif getattr(self, "module_", None) is None:
            raise ValueError(
                f"warm_start: this {type(self).__name__} holds no weights yet (fit or load it first)"
            )
        trainable = _Trainable(self.module_, objective.bind(train, self.module_))
        windows = make_windows(train, self.max_len, last_position=objective.last_position)
        if len(windows.users) == 0:
            raise ValueError(
                f"no user has at least 2 training interactions; {type(self).__name__} has nothing to learn"
            )
        tensors = {
            name: torch.from_numpy(getattr(windows, name)) for name in ("inputs", "targets", "rows", "users")
        }
        lengths = (windows.inputs != 0).sum(axis=1)
        epochs_started = [0]

        def make_batches(rng: np.random.Generator) -> list[dict[str, Any]]:
            epochs_started[0] += 1
            order = rng.permutation(len(lengths))
            groups = batch_rows(order, config.batch_size, lengths if self.length_buckets else None, rng)
            batches = []
            for step, picked in enumerate(groups):
                picked = shard(picked)  # under torchrun, this rank's rows of the global batch
                width = int(lengths[picked].max())  # pad only to the batch's longest window
                index = torch.from_numpy(picked)
                batch = {name: t[index, -width:] for name, t in tensors.items() if name != "users"}
                batch["users"] = tensors["users"][index]
                # training progress in [0, 1] for scheduled weights and temperatures
                batch["progress"] = min(1.0, (epochs_started[0] - 1 + step / len(groups)) / config.max_epochs)
                batches.append(batch)
            return batches

        def loss_fn(module: _Trainable, batch: dict[str, Any]) -> torch.Tensor:
            return module.objective(module.student, batch)

        validate = None
        if valid is not None:

            def validate(_module: nn.Module) -> float:
                return evaluate(self, train, valid, ks=(10,), batch_size=512).summary["NDCG@10"]

        self.objective_ = objective.describe()
        meta = {
            "student": type(self).__name__,
            "params": _plain_params(self.get_params()),
            "objective": objective.describe(),
            "data": {"n_users": train.n_users, "n_items": train.n_items, "n_train": len(train)},
        }
        try:
            self.fit_result_: FitResult = fit_loop(
                trainable, make_batches, loss_fn, validate, config, callbacks=callbacks, meta=meta
            )
        finally:  # also when stopped (a pruned trial): the student never keeps a training-only layer
            # a KD method may have widened the item embedding for training (`ced`): keep its plain, folded table
            folded = getattr(getattr(self.module_, "item_embedding", None), "folded", None)
            if folded is not None:
                self.module_.item_embedding = folded()
        self.history_ = self.fit_result_.history
        return self

    def _hidden(self, users: np.ndarray, history: Interactions) -> torch.Tensor:
        module = self._eval_module()
        device = module_device(module)  # where it trained (a loaded model: the CPU)
        with torch.inference_mode():
            ids = history_windows(users, history, self.max_len).to(device)  # (batch, width)
            return module(ids, torch.as_tensor(users, dtype=torch.int64, device=device))[:, -1]

    def encode(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        """(len(users), dim) float32 state after each user's last `max_len` history items."""
        return self._hidden(users, history).float().cpu().numpy()

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        hidden = self._hidden(users, history)  # (batch, dim)
        # The scoring head in float32, also under bf16 autocast (bfloat16 scores tie and reorder a catalogue)
        with torch.inference_mode(), torch.autocast(hidden.device.type, enabled=False):
            return self.module_.logits(hidden.float()).cpu().numpy()  # (batch, n_items)

    def item_embeddings(self) -> np.ndarray:
        """(n_items, dim) float32 output item vectors."""
        with torch.inference_mode():
            return self.module_.item_table().float().cpu().numpy().copy()

    def n_params(self) -> int:
        """Learned parameters of the student module (a KD term's own parameters, e.g. a hint projection,
        are training-only and not counted)."""
        return sum(p.numel() for p in self.module_.parameters())
