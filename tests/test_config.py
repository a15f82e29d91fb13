"""The strict config loader: every mistake is an error naming the key and the valid choices."""

from __future__ import annotations

import pytest

from distillrec.config import ConfigError, dump_config, load_config, parse_config

BASE = """
name: t
dataset: {source: ml-100k}
students:
  - {name: sasrec, params: {dim: 8}, kd: [soft]}
"""


def write(tmp_path, text=BASE):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_are_filled_and_resolved_config_round_trips(tmp_path):
    config = load_config(write(tmp_path))
    assert config.split.protocol == "leave_one_out" and config.teacher.dim == 128 and config.seeds == [0]
    again = parse_config(__import__("yaml").safe_load(dump_config(config)))
    assert again == config


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("teacher.dimm=3", ["teacher.dimm: unknown key", "'dim'", "'dropout'"]),
        ("teacher.dim=abc", ["teacher.dim:", "integer"]),
        ("teacher.dim=1.5", ["teacher.dim:", "integer"]),
        ("teacher.bf16=1", ["teacher.bf16:", "boolean"]),
        ("split.protocol=loo", ["split.protocol", "'leave_one_out'", "'cold_item'"]),
        ("baselines.models=[easy]", ["baselines.models", "['easy']", "'ease'"]),
        ("students.0.kd=[softt]", ["students.0.kd", "'softt'", "'rd'"]),
        ("students.0.kd=[soft:temp=2]", ["students.0.kd", "['temp']", "'temperature'"]),
        ("students.0.name=bert", ["students.0.name", "'bert'", "'gru4rec'"]),
        ("students.0.params.dimm=3", ["students.0", "params: dimm: unknown key; valid:", "'dim'"]),
        ("baselines.grids={ease: [{l2: 100.0}, {lambda: 3}]}", ["grids.ease.1: lambda: unknown key", "'l2'"]),
        ("baselines.grids={ease: [{l2: -1.0}]}", ["grids.ease.0: l2:", "greater than 0"]),
        ("baselines.grids={easy: [{}]}", ["grids: unknown model 'easy'", "'ease'"]),
        ("students.0.params.dim=1.5", ["students.0", "params: dim:", "integer"]),
        ("students.0.params.dropout=1.0", ["params: dropout:", "less than 1"]),
        ("students.0.params.seed=3", ["params: ['seed'] are set by the run"]),
        ("dataset.duplicates=some", ["dataset.duplicates", "'first'"]),
        ("surprise=1", ["surprise: unknown key", "'teacher'"]),
    ],
)
def test_mistakes_name_the_key_and_the_choices(tmp_path, override, expected):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path), [override])
    for fragment in expected:
        assert fragment in str(info.value)


def test_overrides_go_through_the_same_checks_and_apply(tmp_path):
    config = load_config(write(tmp_path), ["teacher.dim=64", "students.0.params.dim=4", "seeds=[1, 2]"])
    assert config.teacher.dim == 64 and config.students[0].params == {"dim": 4} and config.seeds == [1, 2]
    with pytest.raises(ConfigError, match="expected key.path=value"):
        load_config(write(tmp_path), ["teacher.dim"])


def test_kd_entries_take_method_options_and_aliases(tmp_path):
    config = load_config(write(tmp_path), ["students.0.kd=[param_init,soft:temperature=2]"])
    assert config.students[0].kd == ["param_init", "soft:temperature=2"]
    assert (
        config.students[0].label == "sasrec-param_init+soft_temperature=2"
    )  # ":" is not safe in a folder name


def test_student_labels_are_unique_and_a_tag_names_a_student(tmp_path):
    twice = BASE + "  - {name: sasrec, params: {dim: 16}, kd: [soft]}\n"
    with pytest.raises(ConfigError, match=r"students.0 and students.1 share the label 'sasrec-soft'.*`tag`"):
        load_config(write(tmp_path, twice))
    tagged = BASE + "  - {name: sasrec, params: {dim: 16}, kd: [soft], tag: sasrec16-soft}\n"
    assert [s.label for s in load_config(write(tmp_path, tagged)).students] == [
        "sasrec-soft",
        "sasrec16-soft",
    ]
    for bad in ("a/b", ".", ".."):  # not a folder name inside the run folder
        with pytest.raises(ConfigError, match="students.0.tag"):
            load_config(write(tmp_path), [f"students.0.tag='{bad}'"])


def test_bad_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1,"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="dataset: Field required"):
        load_config(write(tmp_path, "name: t\n"))


def test_shipped_configs_are_valid():
    from pathlib import Path

    configs = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        load_config(path)


def test_the_teacher_config_defaults_are_the_teacher_models():
    """`teacher:` settings that are model hyperparameters default to the model's own defaults (one source of
    truth: a drift between `TeacherConfig` and `TeacherParams` fails here)."""
    from distillrec.config import TeacherConfig
    from distillrec.teachers.llm_enhanced_seq import TeacherParams

    shared = set(TeacherConfig.model_fields) & set(TeacherParams.model_fields)
    assert {"dim", "n_layers", "dropout", "adapter_hidden", "id_dropout", "lr", "patience"} <= shared
    differ = {
        key: (TeacherConfig.model_fields[key].default, TeacherParams.model_fields[key].default)
        for key in shared
        if TeacherConfig.model_fields[key].default != TeacherParams.model_fields[key].default
    }
    assert differ == {}


def test_compress_methods_are_checked_at_load():
    base = {"name": "t", "dataset": {"source": "ml-100k"}}
    assert (
        parse_config({**base, "compress": {"methods": ["int8", "prune,int4", "pq"]}}).compress.sparsity == 0.5
    )
    for methods, message in (
        (["int9"], "unknown compression method"),
        (["pq,prune"], "give it alone or followed by int8"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_config({**base, "compress": {"methods": methods}})


def test_a_new_teacher_option_keeps_the_stage_key_of_older_runs():
    """`distillrec run` keys the teacher stage by its settings: an option added later must be left out of the key at
    its default (`stages/teacher.KEY_LATER_OPTIONS`), or every finished teacher is trained again. The digest is the
    default settings' key since before fusion and encoder tuning existed."""
    import hashlib
    import json

    from distillrec.config import TeacherConfig
    from distillrec.stages.teacher import key_config

    digest = hashlib.sha256(json.dumps(key_config(TeacherConfig()), sort_keys=True).encode()).hexdigest()[:16]
    assert digest == "a28c8a33db408113"
    assert (
        key_config(TeacherConfig(fusion="nullspace"))["fusion"] == "nullspace"
    )  # a set option keys the stage
