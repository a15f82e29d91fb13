"""KD method specs: `"soft:temperature=2,rd:k=20,ce:weight=0.5"` -> resolved `TermSpec`s and the CE weight.

Methods are comma-separated; options follow their method as `:key=value`. What a method accepts comes from
its `KDMethod` (`losses/method.py`, listed in `losses/registry.py`): the common options `weight`, `schedule`
(constant | linear | cosine, from `weight` to `weight_end` over training progress) and `weight_end`; for a method
that reads the teacher's top-K lists also `k` (teacher slots used), `negatives` (items sampled uniformly from
outside the teacher's top-k) and `confidence` (none | top1 | entropy: per-example weights, `losses.schedules`),
for one that reads hidden states `confidence`; its own options (`KDMethod.options`, a small dataclass) and the
constructor arguments of its loss. An unknown method or key, or a wrong type, is an error naming the valid ones.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from distillrec.losses.registry import ALIASES, KD_METHODS
from distillrec.losses.schedules import CONFIDENCE_KINDS, ConstantSchedule, CosineSchedule, LinearSchedule

__all__ = ["TermSpec", "parse_kd", "method_names"]

_COMMON_KEYS = {"weight", "schedule", "weight_end"}
_READ_KEYS = {
    "topk": {"k", "negatives", "confidence"},
    "hidden": {"confidence"},
    "table": set(),
    "embedding": set(),
}
_SCHEDULES = ("constant", "linear", "cosine")
# loss constructor arguments set by the objective, not by users
_BUILT_BY_OBJECTIVE = frozenset({"reduction", "student_dim", "teacher_dim", "base", "teacher_table"})
_NUMBER = (int, float)
_COMMON_TYPES = {
    "weight": _NUMBER,
    "weight_end": _NUMBER,
    "k": int,
    "negatives": int,
    "schedule": str,
    "confidence": str,
}
_MAY_BE_NONE = {"weight_end", "k"}


def method_names() -> list[str]:
    return sorted([*KD_METHODS, *ALIASES])


def _loss_keys(method: str) -> set[str]:
    variadic = (
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
    )  # nn.Module's *args, **kwargs
    source = KD_METHODS[method].source
    return {
        name
        for name, p in inspect.signature(source.__init__).parameters.items()
        if name not in {"self", *_BUILT_BY_OBJECTIVE} and p.kind not in variadic
    }


def _own_keys(method: str) -> set[str]:
    options = KD_METHODS[method].options
    return {f.name for f in dataclasses.fields(options)} if options else set()


def _valid_keys(method: str) -> set[str]:
    reads = KD_METHODS[method].reads
    common = set() if reads == "embedding" else _COMMON_KEYS  # no loss term: nothing to weight or schedule
    return common | _READ_KEYS[reads] | _own_keys(method) | _loss_keys(method)


def _annotation(method: str, key: str) -> Any:
    """The declared type of a method's own option or of its loss's constructor argument (None if undeclared)."""
    owner = KD_METHODS[method].options if key in _own_keys(method) else KD_METHODS[method].source.__init__
    return typing.get_type_hints(owner).get(key)


def _check_type(method: str, key: str, value: Any) -> None:
    """A wrong type is an error naming the option: the common options by their fixed types, a method's or
    loss's own option by its declared type (`int | None` takes None; a float option takes an int)."""
    if key in _COMMON_TYPES:
        allowed = _COMMON_TYPES[key] if isinstance(_COMMON_TYPES[key], tuple) else (_COMMON_TYPES[key],)
        optional = key in _MAY_BE_NONE
    else:
        declared = _annotation(method, key)
        if declared is None:
            return
        args = typing.get_args(declared) if isinstance(declared, types.UnionType) else (declared,)
        optional = type(None) in args
        allowed = tuple(t for t in args if t is not type(None))
        if float in allowed:
            allowed = (*allowed, int)
    if value is None and optional:
        return
    if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
        names = " or ".join(
            dict.fromkeys("float" if t is int and float in allowed else t.__name__ for t in allowed)
        )
        raise ValueError(f"{method}: option {key}={value!r} must be {names}")


@dataclass(frozen=True)
class TermSpec:
    """One KD term, fully resolved (defaults filled in). The method's own options (`options`, its
    `KDMethod.options` dataclass) read as attributes too: `spec.full` is `spec.options.full`."""

    method: str
    weight: float = 1.0
    schedule: str = "constant"
    weight_end: float | None = None
    k: int | None = None  # teacher top-k slots (None: all exported); top-K methods only
    negatives: int = 0
    confidence: str = "none"
    options: Any = None  # the method's own options (a dataclass instance), or None
    loss_params: dict = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        options = self.__dict__.get("options")
        if options is not None and name in {f.name for f in dataclasses.fields(options)}:
            return getattr(options, name)
        raise AttributeError(f"{type(self).__name__} of {self.__dict__.get('method')!r} has no {name!r}")

    @staticmethod
    def make(method: str, **options: Any) -> TermSpec:
        """Defaults of `method` overridden by `options`; an unknown method or key is an error naming the valid ones."""
        if method in ALIASES:
            method, preset = ALIASES[method]
            options = {**preset, **options}
        if method not in KD_METHODS:
            raise ValueError(
                f"unknown KD method {method!r}; choose from {method_names()} (or 'ce:weight=...')"
            )
        valid = _valid_keys(method)
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for KD method {method!r}; valid: {sorted(valid)}")
        for key, value in options.items():
            _check_type(method, key, value)
        merged = {**KD_METHODS[method].defaults, **options}
        loss_params = {key: merged.pop(key) for key in list(merged) if key in _loss_keys(method)}
        own = {key: merged.pop(key) for key in list(merged) if key in _own_keys(method)}
        cls = KD_METHODS[method].options
        try:
            method_options = cls(**own) if cls else None
        except ValueError as exc:
            raise ValueError(f"{method}: {exc}") from None
        spec = TermSpec(method=method, options=method_options, loss_params=loss_params, **merged)
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
        check = KD_METHODS[self.method].check
        if check is not None:
            check(self)

    def weight_schedule(self):
        if self.schedule == "constant":
            return ConstantSchedule(self.weight)
        cls = LinearSchedule if self.schedule == "linear" else CosineSchedule
        return cls(self.weight, self.weight_end)

    def to_json(self) -> dict:
        """The resolved options that apply to this method (e.g. no `k` for hint), loss defaults included."""
        own = sorted(_valid_keys(self.method) - _loss_keys(self.method))
        source = inspect.signature(KD_METHODS[self.method].source.__init__).parameters
        loss = {key: source[key].default for key in sorted(_loss_keys(self.method))} | self.loss_params
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
    """'soft:temperature=2,rd:k=20,ce:weight=0.5' -> (term specs, CE weight); see the module docstring."""
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
        raise ValueError(f"no KD method in {spec!r}; choose from {method_names()}")
    return terms, ce_weight
