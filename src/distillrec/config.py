"""Experiment configuration: one YAML file -> typed, strict objects.

Input: a YAML file (and `--set key.path=value` overrides). Output: a `RunConfig`. Every section forbids unknown
keys and checks types (pydantic, strict mode for numbers and booleans), so a typo or a wrong type is an error
that names the key; names that pick from a registry (models, students, KD methods, split protocols) are checked
against it and the error lists the valid choices. Only `cli.py` reads `sys.argv`; this module reads files.

    name: quickstart
    dataset: {source: ml-100k, min_rating: null, duplicates: first, min_user_interactions: 0, min_item_interactions: 0}
    split: {protocol: leave_one_out}
    baselines: {models: [mostpop, ease, ials, sasrec], quick: false, grids: {sasrec: [{dropout: 0.2}]}}
    teacher: {encoder: all-MiniLM-L6-v2, dim: 128, max_epochs: 200, ...}        # TeacherConfig fields
    students: [{name: sasrec, params: {dim: 16}, kd: [soft, rd]}]
    seeds: [0, 1, 2]
    tune: {target: teacher, space: {teacher.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}, trials: 20}
    tracking: {backends: [mlflow, tensorboard], mlflow_uri: null, experiment: null}   # metrics.jsonl always
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from distillrec.data.formats import ReadOptions
from distillrec.data.split import SPLITS
from distillrec.devices import DEVICE_PATTERN
from distillrec.models.params import BASELINE_PARAMS, problems
from distillrec.students.params import STUDENT_PARAMS


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DatasetConfig(_Strict):
    source: str
    min_rating: float | None = None
    duplicates: Literal["first", "last", "all"] = "first"
    min_user_interactions: int = Field(0, ge=0)
    min_item_interactions: int = Field(0, ge=0)
    # a generic-format folder's own column names (ours -> the file's) and time format (`data/timestamps.py`)
    columns: dict[str, str] = Field(default_factory=dict)
    item_columns: dict[str, str] = Field(default_factory=dict)
    user_columns: dict[str, str] = Field(default_factory=dict)
    timestamp_format: str = "auto"
    # keep this share of the users (a seeded draw, after the filters): low-data experiments
    user_fraction: float = Field(1.0, gt=0, le=1)
    user_seed: int = 0

    @model_validator(mode="after")
    def _readable(self) -> DatasetConfig:
        self.read_options()  # an unknown column name or time format is an error here, at load
        return self

    def read_options(self) -> ReadOptions:
        return ReadOptions(self.columns, self.item_columns, self.user_columns, self.timestamp_format)


class SplitConfig(_Strict):
    protocol: str = "leave_one_out"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        if value not in SPLITS:
            raise ValueError(f"unknown split {value!r}; choose one of {list(SPLITS)}")
        return value


class BaselinesConfig(_Strict):
    models: list[str] = Field(default_factory=lambda: ["mostpop", "itemknn", "ease", "ials", "bpr", "sasrec"])
    quick: bool = False
    grids: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in BASELINE_PARAMS]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; choose from {sorted(BASELINE_PARAMS)}")
        return value

    @field_validator("grids")
    @classmethod
    def _typed_grids(cls, value: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """Every grid point checked against its model's typed hyperparameters (`models/params.py`)."""
        for name, points in value.items():
            if name not in BASELINE_PARAMS:
                raise ValueError(f"grids: unknown model {name!r}; choose from {sorted(BASELINE_PARAMS)}")
            for index, point in enumerate(points):
                try:
                    BASELINE_PARAMS[name](**point)
                except ValidationError as exc:
                    raise ValueError(
                        f"grids.{name}.{index}: {problems(exc, BASELINE_PARAMS[name])}"
                    ) from None
        return value


class TeacherConfig(_Strict):
    encoder: str = "all-MiniLM-L6-v2"
    template: str | None = None
    encoder_bf16: bool = True
    # > 0: first fine-tune the encoder on this many co-occurring item pairs of the training histories
    # (teachers/tuned_encoder.py), and read the items' text with the tuned encoder
    encoder_tuning_pairs: int = Field(0, ge=0)
    # tune in batches of pairs of similar length: faster on long texts, but its in-batch negatives are less random
    # (measured on ml-100k and Amazon Beauty: a weaker text-only model than random batches; BENCHMARKS.md section 2)
    encoder_tuning_length_sorted: bool = False
    dim: int = Field(128, ge=1)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(2, ge=1)
    max_len: int = Field(200, ge=1)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    adapter_hidden: int = Field(512, ge=1)
    id_init: Literal["pca", "random", "none"] = "pca"
    # training softmax only over items with training interactions (cold items)
    softmax_over_trained: bool = False
    # drop items' ID vectors in training, DropoutNet-style (cold items)
    id_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # how text and ID vectors make the item table (teachers/fusion.py)
    fusion: Literal["adapter", "pca_init", "nullspace"] = "adapter"
    semantic_dims: int = Field(0, ge=0)  # nullspace: text directions kept (0: half of dim)
    train_text: bool = False  # nullspace: train the text directions too

    @model_validator(mode="after")
    def _semantic_dims_below_dim(self) -> TeacherConfig:
        if self.fusion == "nullspace" and self.semantic_dims >= self.dim:
            raise ValueError(f"semantic_dims must be below dim ({self.dim}) for fusion nullspace")
        return self

    max_epochs: int = Field(200, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    patience: int = Field(10, ge=1)
    bf16: bool = False
    length_buckets: bool = False  # batch sequences of similar length (less padding; faster on long histories)
    negatives: int = Field(0, ge=0)  # > 0: sampled softmax (logQ-corrected) against this many negatives
    top_k: int = Field(100, ge=1)
    exclude_seen: bool = True  # soft labels over items the user has not seen yet (off: repeat consumption)
    position_hidden: bool = False
    compare_id_only: bool = False
    # also test the teacher with its cold items scored by their text (`ColdStartFallback`): row
    # "teacher_cold_fallback" of metrics.json; the exports are the teacher's own either way
    cold_fallback: bool = False
    # also test the teacher blended with the text-only model (`TextBlend`, its weight picked on validation with
    # the text's tail as a floor): row "teacher_text_blend"
    text_blend: bool = False
    # pick the blend's weight over validation users weighted towards the test's expected popularity mix
    # (`evaluate/drift.py`; needs text_blend)
    text_blend_drift: bool = False
    # export the blend's soft labels instead of the teacher's own (needs text_blend; `teachers/export.py`)
    export_blend: bool = False

    @model_validator(mode="after")
    def _export_blend_needs_blend(self) -> TeacherConfig:
        if self.export_blend and not self.text_blend:
            raise ValueError(
                "export_blend exports the text blend's soft labels: set text_blend too (--text-blend)"
            )
        if self.text_blend_drift and not self.text_blend:
            raise ValueError(
                "text_blend_drift changes how the text blend's weight is picked: set text_blend too (--text-blend)"
            )
        return self

    @field_validator("encoder")
    @classmethod
    def _encoder_path_exists(cls, value: str) -> str:
        """A local path (starting with /, ., ~) must exist now, not when the teacher stage starts; a model name
        (all-MiniLM-L6-v2, org/name) is resolved by the encoder (offline first)."""
        if value.startswith(("/", ".", "~")) and not Path(value).expanduser().exists():
            raise ValueError(f"no such encoder folder {value!r} (give a local model folder or a model name)")
        return value


class StudentConfig(_Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    kd: list[str] = Field(default_factory=lambda: ["soft"])
    # the student's folder and report name; default "<name>-<kd methods joined by +>" (see `label`)
    # a folder name: safe characters, at least one not a dot (never "." or "..")
    tag: str | None = Field(None, pattern=r"^[A-Za-z0-9._+=-]*[A-Za-z0-9_+=-][A-Za-z0-9._+=-]*$")

    @field_validator("name")
    @classmethod
    def _known_student(cls, value: str) -> str:
        if value not in STUDENT_PARAMS:
            raise ValueError(f"unknown student {value!r}; choose one of {sorted(STUDENT_PARAMS)}")
        return value

    @model_validator(mode="after")
    def _typed_params(self) -> StudentConfig:
        """`params` checked against the student's typed hyperparameters (`students/params.py`)."""
        reserved = sorted({"seed", "text_embeddings"} & set(self.params))
        if reserved:
            raise ValueError(
                f"params: {reserved} are set by the run (seeds: the config's `seeds`; the text: the teacher)"
            )
        try:
            STUDENT_PARAMS[self.name](**self.params)
        except ValidationError as exc:
            raise ValueError(f"params: {problems(exc, STUDENT_PARAMS[self.name])}") from None
        return self

    @field_validator("kd")
    @classmethod
    def _known_kd(cls, value: list[str]) -> list[str]:
        from distillrec.losses.spec import parse_kd

        parse_kd(",".join(value))  # unknown methods or options are errors naming the valid ones
        return value

    @property
    def label(self) -> str:
        """`tag`, or "<name>-<kd methods joined by +>" with any character that is not safe in a folder name on
        every OS (such as ":" of "rd:k=20") replaced by "_"."""
        if self.tag is not None:
            return self.tag
        return re.sub(r"[^A-Za-z0-9._+=-]", "_", f"{self.name}-{'+'.join(self.kd)}")


class ParamSpace(_Strict):
    """One searched config key: a float or int range (`low`, `high`, `log`) or a list of `choices`."""

    type: Literal["float", "int", "categorical"]
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(cls.model_fields))
            if unknown:
                raise ValueError(f"unknown key(s) {unknown}; valid keys here: {sorted(cls.model_fields)}")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpace:
        if self.type == "categorical":
            if not self.choices or self.low is not None or self.high is not None or self.log:
                raise ValueError("type 'categorical' takes a non-empty `choices` list and no low/high/log")
            return self
        if self.choices is not None or self.low is None or self.high is None:
            raise ValueError(
                f"type {self.type!r} takes `low` and `high` (and optionally `log`), not `choices`"
            )
        if self.type == "int" and not (isinstance(self.low, int) and isinstance(self.high, int)):
            raise ValueError("type 'int' needs integer `low` and `high`")
        if not self.low < self.high:
            raise ValueError(f"`low` ({self.low}) must be below `high` ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"`log: true` needs `low` > 0, got {self.low}")
        return self


class TuneConfig(_Strict):
    """`distillrec tune`: which model to tune, over which config keys, how many trials, which sampler."""

    target: str = Field("teacher", pattern=r"^(teacher|student:[0-9]+)$")
    space: dict[str, ParamSpace] = Field(min_length=1)
    trials: int = Field(20, ge=1)
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    seed: int = 0
    pruning: bool = True

    @model_validator(mode="after")
    def _grid_needs_finite_space(self) -> TuneConfig:
        if self.sampler == "grid":
            floats = [key for key, spec in self.space.items() if spec.type == "float"]
            if floats:
                raise ValueError(
                    f"sampler 'grid' needs int or categorical keys; {floats} are 'float' "
                    "(give them as `choices`)"
                )
        return self


class TransferConfig(_Strict):
    """A teacher of another dataset carried to this one through item text (`stages/transfer.py`), in place of the
    teacher a run trains: the run's students distil from it."""

    source: str  # the source teacher folder (`distillrec teacher` or a run's `teacher/`, fusion adapter)
    id_match: float = Field(
        0.9, gt=0, le=1
    )  # text cosine at which an item takes its source match's ID vector
    # the low-data curve (`stages/transfer_curve.py`): the teacher also carried to these shares of the target's
    # users, every student trained there with KD and without; the report plots test NDCG@10 against the share
    fractions: list[float] = Field(default_factory=list)

    @field_validator("fractions")
    @classmethod
    def _shares(cls, value: list[float]) -> list[float]:
        wrong = [f for f in value if not 0 < f <= 1]
        if wrong:
            raise ValueError(f"fractions: each a share of the target's users in (0, 1], got {wrong}")
        if len(set(value)) < len(value):
            raise ValueError(f"fractions: a share is listed twice: {value}")
        return sorted(value)


class MultiTaskConfig(_Strict):
    """The multi-task (CTR/CVR) comparison (`stages/multitask.py`, `distillrec multitask`): impressions built from
    the ratings (`data/impressions.py`), a text-aware ESMM teacher, ESMM students trained alone and with each KD
    variant (`multitask/params.KD_VARIANTS`), for every seed."""

    # a table of the user's own impressions (user_id, item_id, timestamp and the two behaviour columns, of the
    # dataset's items); None: built from the dataset's ratings by the stated proxy below
    impressions: str | None = None
    behaviours: list[str] = Field(default_factory=lambda: ["click", "conversion"], min_length=2, max_length=2)
    negatives_per_click: float = Field(3.0, ge=0)  # unclicked impressions per rated item
    conversion_rating: float = 4.0  # a click converts when its rating is at least this
    impression_seed: int = 0  # the draw of the unclicked impressions (the same for every model seed)
    valid_share: float = Field(0.1, gt=0, lt=1)  # each user's latest impressions held out, by time
    test_share: float = Field(0.1, gt=0, lt=1)
    encoder: str = "all-MiniLM-L6-v2"  # the teacher's language model (item text)
    template: str | None = None
    teacher: dict[str, Any] = Field(default_factory=dict)  # `multitask/params.MultiTaskParams` overrides
    student: dict[str, Any] = Field(default_factory=dict)
    variants: list[str] = Field(
        default_factory=lambda: ["alone", "kd-ctr", "kd-ctcvr", "kd-soft", "kd-multi"]
    )

    @field_validator("variants")
    @classmethod
    def _known_variants(cls, value: list[str]) -> list[str]:
        from distillrec.multitask.params import KD_VARIANTS

        unknown = [v for v in value if v not in KD_VARIANTS]
        if unknown or not value or value[0] != "alone":
            raise ValueError(
                f"variants start with 'alone' (what the others are compared with) and name some of "
                f"{', '.join(KD_VARIANTS)}; got {value}"
            )
        return value

    @field_validator("teacher", "student")
    @classmethod
    def _known_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        from distillrec.multitask.params import params_from

        params_from(value)
        return value


class CompressConfig(_Strict):
    """Compressed copies of every student's KD model (`distillrec compress`), evaluated and reported beside them;
    `methods` empty: no compression stage."""

    methods: list[str] = Field(
        default_factory=list
    )  # each "int8", "int4", "pq", "prune,int8", "lowrank,int4", ...
    sparsity: float = Field(0.5, ge=0.0, lt=1.0)  # prune
    rank: int | None = Field(None, ge=1)  # lowrank (default: by energy)
    energy: float = Field(0.95, gt=0.0, le=1.0)  # lowrank
    subvectors: int | None = Field(None, ge=1)  # pq
    # > 0: each compressed copy is fine-tuned this many epochs with KD (from its decoded weights, best epoch on
    # validation) and compressed again with its method; reported beside the copy without fine-tuning
    kd_finetune_epochs: int = Field(0, ge=0)
    kd_finetune_methods: list[str] | None = None  # the fine-tuning's KD methods (default: the student's own)
    # the fine-tuning sees the weights as they will be stored (`compression_aware.py`: fake quantisation, fixed
    # pruning masks, fixed pq codes); off, or with lowrank or channels: fine-tuned in float32, then compressed again
    kd_finetune_aware: bool = True
    # the fine-tuning's learning rate (None: a tenth of the student's own, so the trained weights move little)
    kd_finetune_lr: float | None = Field(None, gt=0)

    @field_validator("kd_finetune_methods")
    @classmethod
    def _known_kd(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            from distillrec.losses.spec import parse_kd

            parse_kd(",".join(value))
        return value

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, value: list[str]) -> list[str]:
        from distillrec.codecs import check_methods

        for method in value:
            check_methods([step.strip() for step in method.split(",")])
        if len(set(value)) < len(value):
            raise ValueError(f"a method is listed twice: {value}")
        return value


class TrackingConfig(_Strict):
    """Where per-epoch metrics go besides `metrics.jsonl` (always written); see `tracking.py`."""

    backends: list[str] = Field(default_factory=list)
    mlflow_uri: str | None = None  # default: sqlite:///<run folder>/mlflow.db
    experiment: str | None = None  # MLflow experiment name; default: the config's `name`

    @field_validator("backends")
    @classmethod
    def _known_backends(cls, value: list[str]) -> list[str]:
        from distillrec.tracking import BACKENDS

        unknown = [b for b in value if b not in BACKENDS]
        if unknown:
            raise ValueError(
                f"unknown tracking backend(s) {unknown}; choose from {sorted(BACKENDS)} "
                "(metrics.jsonl is always written)"
            )
        if len(set(value)) < len(value):
            raise ValueError(f"a backend is listed twice in {value}")
        return value

    @model_validator(mode="after")
    def _mlflow_settings_need_mlflow(self) -> TrackingConfig:
        for key in ("mlflow_uri", "experiment"):
            if getattr(self, key) is not None and "mlflow" not in self.backends:
                raise ValueError(f"{key} is set but 'mlflow' is not in backends {self.backends}")
        return self


class RunConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    dataset: DatasetConfig
    split: SplitConfig = Field(default_factory=SplitConfig)
    baselines: BaselinesConfig = Field(default_factory=BaselinesConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    students: list[StudentConfig] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    progress: bool = True
    # where the torch models train: auto (a CUDA GPU when torch sees one), cpu, cuda, cuda:N or mps; not part
    # of any stage's key (results agree across devices up to float rounding)
    device: str = Field("auto", pattern=DEVICE_PATTERN)
    compress: CompressConfig = Field(default_factory=CompressConfig)
    # the multi-task (click and conversion) comparison on this dataset (`stages/multitask.py`), over `seeds`
    multitask: MultiTaskConfig | None = None
    # the teacher carried over from another dataset instead of trained here (then no `teacher:` section)
    transfer: TransferConfig | None = None
    tune: TuneConfig | None = None
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _one_teacher(self) -> RunConfig:
        if self.transfer is not None and "teacher" in self.model_fields_set:
            raise ValueError(
                "transfer: the run's teacher is the one carried over from transfer.source; leave out teacher: "
                "(its settings come from the source teacher's folder)"
            )
        return self

    @model_validator(mode="after")
    def _curve_beside_the_run(self) -> RunConfig:
        if self.transfer is not None and self.dataset.user_fraction in self.transfer.fractions:
            raise ValueError(
                f"transfer.fractions: {self.dataset.user_fraction} is the run's own share of the users "
                "(dataset.user_fraction), already a point of the curve; leave it out"
            )
        return self

    @model_validator(mode="after")
    def _unique_student_labels(self) -> RunConfig:
        seen: dict[str, int] = {}
        for index, student in enumerate(self.students):
            if student.label in seen:
                raise ValueError(
                    f"students.{seen[student.label]} and students.{index} share the label {student.label!r} "
                    "(their folder and report name); give one of them its own `tag`"
                )
            seen[student.label] = index
        return self

    @model_validator(mode="after")
    def _tune_keys_exist(self) -> RunConfig:
        if self.tune is None:
            return self
        target = self.tune.target
        if target == "teacher":
            prefix = "teacher."
        else:
            index = int(target.split(":")[1])
            if index >= len(self.students):
                raise ValueError(
                    f"tune.target: {target!r} but the config has {len(self.students)} student(s)"
                )
            prefix = f"students.{index}."
        for key in self.tune.space:
            if not key.startswith(prefix):
                raise ValueError(f"tune.space.{key}: target {target!r} tunes keys under {prefix!r} only")
            problem = _missing_key(self, key)
            parts = key.split(".")
            if problem is None and parts[0] == "students" and parts[2] == "params" and len(parts) == 4:
                fields = STUDENT_PARAMS[self.students[int(parts[1])].name].model_fields
                if parts[3] not in fields:
                    problem = f"no hyperparameter {parts[3]!r} for this student; valid: {sorted(fields)}"
            if problem:
                raise ValueError(f"tune.space.{key}: {problem}")
        return self


def _missing_key(config: BaseModel, key: str) -> str | None:
    """Why the dotted `key` names no value of `config` (None when it does; free `params` dicts take any key)."""
    node: Any = config
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if isinstance(node, BaseModel):
            if part not in type(node).model_fields:
                return f"no key {part!r} here; valid keys: {sorted(type(node).model_fields)}"
            node = getattr(node, part)
        elif isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return f"{part!r} is not an index of a list of {len(node)}"
            node = node[int(part)]
        elif isinstance(node, dict):
            return (
                None
                if depth == len(parts) - 1
                else f"{part!r}: nested keys inside a params dict are not supported"
            )
        else:
            return f"{'.'.join(parts[:depth])} is a value, not a section"
    return None


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a YAML file, apply `key.path=value` overrides (values parsed as YAML), validate strictly."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    for override in overrides:
        _apply_override(data, override)
    return parse_config(data, source=str(path))


def parse_config(data: dict, source: str = "<config>") -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "<top level>"
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = f"unknown key; valid keys here: {_valid_keys(error['loc'])}"
            problems.append(f"{key}: {message}")
        raise ConfigError(f"{source}: invalid configuration\n  " + "\n  ".join(problems)) from None


def _valid_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        nested = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return sorted(model.model_fields)


def _apply_override(data: dict, override: str) -> None:
    if "=" not in override:
        raise ConfigError(f"override {override!r}: expected key.path=value, e.g. teacher.dim=64")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
            continue
        node = node.setdefault(part, {})
        if not isinstance(node, dict | list):
            raise ConfigError(f"override {override!r}: {part!r} is not a section")
    value = yaml.safe_load(raw)
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def dump_config(config: RunConfig) -> str:
    """The fully resolved config (defaults filled in) as YAML, saved next to every run."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
