"""`TorchRecommender`: a recommender whose whole scoring state is one torch module, `module_`.

A subclass builds the module from its constructor arguments and the training data's sizes in
`_build_module(train)` (the same call in `fit` and in `restore`), so a saved model is its arguments plus the
module's `state_dict` (`fitted_state`), and loading builds the module again and loads the weights into it.
Buffers a module rebuilds from the arguments (e.g. a frozen text table registered as non-persistent) are not
part of the state.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Self

import numpy as np
import torch
from torch import nn

from distillrec.data.interactions import Interactions
from distillrec.models.base import Recommender


class TorchRecommender(Recommender):
    saved_as = "safetensors"
    module_: nn.Module

    @abstractmethod
    def _build_module(self, train: Interactions) -> nn.Module:
        """A freshly initialised module for data of `train`'s sizes."""

    def _eval_module(self) -> nn.Module:
        """`module_` in eval mode, for scoring. `eval()` walks every submodule (a tenth of one user's latency), so
        it is called only when the module is still in training mode."""
        if self.module_.training:
            self.module_.eval()
        return self.module_

    def fitted_state(self) -> dict[str, np.ndarray]:
        return {name: t.detach().cpu().contiguous().numpy() for name, t in self.module_.state_dict().items()}

    def restore(self, state: dict[str, np.ndarray], shape: Interactions) -> Self:
        module = self._build_module(shape)
        expected = module.state_dict()
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        wrong = [
            f"{name} {tuple(state[name].shape)} (expected {tuple(t.shape)})"
            for name, t in expected.items()
            if name in state and tuple(state[name].shape) != tuple(t.shape)
        ]
        if missing or unexpected or wrong:
            raise ValueError(
                f"the saved weights do not fit a {type(self).__name__} built from the saved settings: "
                f"missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shape {wrong[:5]}"
            )
        module.load_state_dict({name: torch.from_numpy(np.array(v)) for name, v in state.items()})
        module.eval()
        self.module_ = module
        return self
