"""Hyperparameter search with Optuna: a `RunConfig` with a `tune` section -> the best config, ready for `run`.

Input: a `RunConfig` whose `tune` section names the target ("teacher" or "student:<index>"), the searched
dotted config keys with their ranges, the number of trials, the sampler (TPE, random, grid), a seed and whether
to prune. Output, in the run folder:

    tune.db             Optuna RDB storage (sqlite); study name fixed by config name and target, so calling
                        `tune` again resumes: finished trials are kept and only the missing ones run
    trials.csv          one row per trial (number, state, value, params, times)
    best_config.yaml    the fully resolved config with the best values applied and no `tune` section

Objective: validation NDCG@10 (history = train), maximised. The teacher target trains `LLMEnhancedSASRec` on
the LM text embeddings with the trial's `teacher.*` values and reads its best validation score. The student
target trains the student with its KD methods from the teacher folder `<run folder>/teacher` (built once with
the config's teacher settings), seed `config.seeds[0]`. Each epoch's validation score is reported to Optuna
(`trial.report`), and a `MedianPruner` (Optuna's median stopping rule: stop a trial whose best intermediate
value is below the median of earlier trials at the same step) stops bad trials by raising `TrialPruned`.
The test split is never read.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from distillrec.config import ParamSpace, RunConfig, parse_config

__all__ = ["TuneResult", "tune", "train_target", "pruning_callback", "apply_values", "STUDY_FILE"]

STUDY_FILE = "tune.db"
PRUNER_STARTUP_TRIALS = 5  # trials that always run to the end before any pruning
PRUNER_WARMUP_EPOCHS = 3  # epochs of every trial that are never pruned


@dataclass(eq=False)
class TuneResult:
    best_value: float  # validation NDCG@10 of the best trial
    best_params: dict[str, Any]  # dotted config key -> value
    best_config: RunConfig  # the config with the best values applied and `tune` removed
    n_complete: int
    n_pruned: int
    run_dir: Path


@dataclass(eq=False)
class _Data:
    """Prepared data, text embeddings and the teacher folder, made on first use and shared by the trials."""

    config: RunConfig
    run_dir: Path
    cache: dict[str, Any] = field(default_factory=dict)

    def prepared(self):
        if "data" not in self.cache:
            from distillrec.stages.data import prepare_data

            self.cache["data"] = prepare_data(self.config.dataset, self.config.split)
        return self.cache["data"]

    def text_embeddings(self, config: RunConfig):
        teacher = config.teacher
        key = (
            "text",
            teacher.encoder,
            teacher.template,
            teacher.encoder_bf16,
            teacher.encoder_tuning_pairs,
            teacher.encoder_tuning_length_sorted,
        )
        if key not in self.cache:
            from distillrec.stages.teacher import encode_items

            encoded = encode_items(
                self.prepared(),
                teacher,
                self.run_dir,
                self.config.seeds[0],
                config.progress,
                log=lambda m: None,
                device=config.device,
            )
            self.cache[key] = encoded.vectors
        return self.cache[key]

    def teacher_dir(self) -> Path:
        """`<run folder>/teacher`, built with the config's teacher settings unless already there."""
        folder = self.run_dir / "teacher"
        if not (folder / "metrics.json").exists():
            from distillrec.stages.teacher import build_teacher

            build_teacher(
                self.prepared(),
                folder,
                self.config.teacher,
                seed=self.config.seeds[0],
                progress=self.config.progress,
                device=self.config.device,
            )
        return folder


def train_target(config: RunConfig, target: str, data: _Data, callbacks: list[Callable]) -> float:
    """Train `target` as `config` says, through the same builders as the stages (`make_teacher_model`,
    `fit_student`); return its best validation NDCG@10. `callbacks` go to `fit_loop`."""
    split = data.prepared().split
    seed = config.seeds[0]
    if target == "teacher":
        from distillrec.stages.teacher import make_teacher_model

        model = make_teacher_model(
            data.text_embeddings(config), config.teacher, None, seed, config.progress, config.device
        )
        model.fit(split.train, split.valid, callbacks=callbacks)
        return float(model.fit_result_.best_score)

    from distillrec.distill.run import fit_student, make_objective, resolve_student_params

    student = config.students[int(target.split(":")[1])]
    teacher_dir = data.teacher_dir()
    params = resolve_student_params(
        teacher_dir, student.name, {"progress": config.progress, "device": config.device, **student.params}
    )
    objective = make_objective(teacher_dir, student.kd, last_position=True)
    model = fit_student(split, student.name, params, seed, objective, callbacks)
    return float(model.fit_result_.best_score)


def pruning_callback(trial: optuna.Trial) -> Callable:
    """A `fit_loop` callback: report each validated epoch's NDCG@10; raise `TrialPruned` when Optuna says so."""

    def callback(event) -> None:
        score = event.record.get("valid_ndcg10")
        if score is None:
            return
        trial.report(float(score), step=event.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"epoch {event.epoch}: validation NDCG@10 {score:.4f} below the median")

    return callback


def apply_values(config: RunConfig, values: dict[str, Any]) -> RunConfig:
    """`config` with each dotted key set to its value and no `tune` section, validated strictly."""
    data = copy.deepcopy(config.model_dump(mode="json"))
    data.pop("tune", None)
    for key, value in values.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(parts[-1])] = value
        else:
            node[parts[-1]] = value
    return parse_config(data, source="tuned config")


def _suggest(trial: optuna.Trial, key: str, spec: ParamSpace) -> Any:
    if spec.type == "float":
        return trial.suggest_float(key, float(spec.low), float(spec.high), log=spec.log)
    if spec.type == "int":
        return trial.suggest_int(key, int(spec.low), int(spec.high), log=spec.log)
    return trial.suggest_categorical(key, spec.choices)


def _sampler(name: str, space: dict[str, ParamSpace], seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        grid = {
            key: (list(spec.choices) if spec.type == "categorical" else list(range(spec.low, spec.high + 1)))
            for key, spec in space.items()
        }
        return optuna.samplers.GridSampler(grid, seed=seed)
    raise ValueError(f"unknown sampler {name!r}; choose one of ['grid', 'random', 'tpe']")


def tune(
    config: RunConfig, run_dir: str | Path, trials: int | None = None, sampler: str | None = None, log=print
) -> TuneResult:
    """Run the study until `trials` (default `config.tune.trials`) trials have finished (complete or pruned),
    counting those already in `run_dir/tune.db`; write `trials.csv` and `best_config.yaml`."""
    if config.tune is None:
        raise ValueError(f"config {config.name!r} has no `tune` section; add one (see config.py)")
    settings = config.tune
    trials = settings.trials if trials is None else trials
    sampler = settings.sampler if sampler is None else sampler
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if sampler == "grid":  # the config check of grid spaces, for a sampler given on the command line
        parse_config(
            {
                **config.model_dump(mode="json"),
                "tune": {**settings.model_dump(mode="json"), "sampler": "grid"},
            }
        )
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{(run_dir / STUDY_FILE).resolve()}"
    study_name = f"{config.name}:{settings.target}"
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_EPOCHS
        )
        if settings.pruning
        else optuna.pruners.NopPruner()
    )
    # A resumed study gets a different sampler seed, so a seeded random sampler does not redraw earlier points.
    probe = optuna.create_study(
        storage=storage, study_name=study_name, direction="maximize", load_if_exists=True
    )
    finished_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(probe.get_trials(deepcopy=False, states=finished_states))
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        pruner=pruner,
        sampler=_sampler(sampler, settings.space, settings.seed + done),
    )
    data = _Data(config, run_dir)

    def objective(trial: optuna.Trial) -> float:
        values = {key: _suggest(trial, key, spec) for key, spec in settings.space.items()}
        trial_config = apply_values(config, values)
        callbacks = [pruning_callback(trial)] if settings.pruning else []
        score = train_target(trial_config, settings.target, data, callbacks)
        log(f"trial {trial.number}: validation NDCG@10 {score:.4f} {values}")
        return score

    remaining = trials - done
    if done:
        log(f"resuming study {study_name!r} in {run_dir / STUDY_FILE}: {done} finished trial(s) kept")
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, catch=())
    study.trials_dataframe().to_csv(run_dir / "trials.csv", index=False)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise RuntimeError(f"no trial of study {study_name!r} completed; see {run_dir / 'trials.csv'}")
    best = study.best_trial
    best_config = apply_values(config, best.params)
    text = yaml.safe_dump(
        {k: v for k, v in best_config.model_dump(mode="json").items() if k != "tune"}, sort_keys=False
    )
    (run_dir / "best_config.yaml").write_text(text, encoding="utf-8")
    return TuneResult(
        best_value=float(best.value),
        best_params=dict(best.params),
        best_config=best_config,
        n_complete=len(complete),
        n_pruned=len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))),
        run_dir=run_dir,
    )
