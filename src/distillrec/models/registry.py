"""The baselines by name, with the hyperparameter grid each is tuned over.

Input: a model name and keyword hyperparameters. Output: an unfitted `Recommender` (`make_model`).
`BASELINES` is an explicit dict (no registration on import); `GRIDS[name]` is a list of hyperparameter dicts,
every point a valid set of constructor arguments, tuned by `distillrec.models.grid_search.tune_and_test` on the
validation split. The grids are small (<= 12 points) and centred on values from the literature:

- ItemKNN: neighbourhood size and shrink term as searched by Dacrema et al. 2019 ("Are we really making much
  progress?", topK in [5, 1000], shrink in [0, 1000]).
- EASE: l2 from 50 to 2000 around Steck 2019's best values (200 for MSD, 500 for ML-20M, 1000 for Netflix).
- iALS: dimension, regularization and confidence weight (Hu et al. 2008; Rendle et al. 2022, "Revisiting the
  performance of iALS", who stress tuning the regularization jointly with the dimension). alpha is Hu et al.'s
  c = 1 + alpha r (see `models/ials.py`); alpha = 1 / alpha_0 in Rendle et al.'s terms.
- BPR: dimension, learning rate and regularization in the ranges of Rendle et al. 2009 and of implicit's
  defaults (lr 0.01, reg 0.01); higher learning rates diverge quickly at 100 epochs.
"""

from __future__ import annotations

import itertools

from distillrec.models.base import Recommender
from distillrec.models.bpr import BPR
from distillrec.models.ease import EASE
from distillrec.models.ials import IALS
from distillrec.models.itemknn import ItemKNN
from distillrec.models.mostpop import MostPop
from distillrec.models.params import BASELINE_PARAMS
from distillrec.models.sasrec import SASRec

BASELINES: dict[str, type[Recommender]] = {
    "mostpop": MostPop,
    "itemknn": ItemKNN,
    "ease": EASE,
    "ials": IALS,
    "bpr": BPR,
    "sasrec": SASRec,
}


def _product(**axes: list) -> list[dict]:
    """Every combination of the given values: `_product(a=[1, 2], b=[3])` -> `[{a: 1, b: 3}, {a: 2, b: 3}]`."""
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]


GRIDS: dict[str, list[dict]] = {
    "mostpop": [{}],
    "itemknn": _product(k_neighbours=[3, 5, 10, 20, 50, 200], shrink=[0.0, 100.0]),
    "ease": _product(l2=[50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]),
    "ials": _product(factors=[64, 128], regularization=[1.0, 10.0], alpha=[1.0, 10.0]),
    "bpr": _product(factors=[64, 128], learning_rate=[0.01, 0.05], regularization=[0.001, 0.01]),
    # SASRec-CE: each point trains to early stopping, so the grid is the two settings that matter most in
    # Klenitskiy & Vasilev 2023 and Kang & McAuley 2018: dropout (0.2 dense data, 0.5 sparse data).
    "sasrec": _product(dropout=[0.2, 0.5]),
}

# Smoke-run grids (`--quick`): one point each, tiny epoch budgets.
QUICK_GRIDS: dict[str, list[dict]] = {
    "mostpop": [{}],
    "itemknn": [{"k_neighbours": 50, "shrink": 0.0}],
    "ease": [{"l2": 200.0}],
    "ials": [{"factors": 64, "regularization": 1.0, "alpha": 1.0, "iterations": 5}],
    "bpr": [{"factors": 64, "learning_rate": 0.01, "regularization": 0.01, "iterations": 20}],
    "sasrec": [{"dropout": 0.2, "max_epochs": 3}],
}


def grid_for(name: str, quick: bool = False, seed: int = 0) -> list[dict]:
    """The grid to tune `name` over, with `seed` set on every point of a model that takes one."""
    grids = QUICK_GRIDS if quick else GRIDS
    if name not in grids:
        raise ValueError(f"no grid for model {name!r}; grids exist for {sorted(grids)}")
    takes_seed = "seed" in BASELINE_PARAMS[name].model_fields
    return [dict(point, seed=seed) if takes_seed else dict(point) for point in grids[name]]


def make_model(name: str, **params) -> Recommender:
    """An unfitted model; an unknown name or hyperparameter is an error listing the valid ones."""
    if name not in BASELINES:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(BASELINES)}")
    cls = BASELINES[name]
    valid = list(cls.params_model.model_fields)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {unknown} for model {name!r}; valid: {valid}")
    return cls(**params)
