"""Multi-task (CTR/CVR) models and their distillation: the binary metrics by hand, ESMM's factorisation, the
objective's terms (stored expected values), the bottoms, training on impressions with and without a teacher, and
the whole comparison on a slice of ml-100k (resumed without retraining)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from conftest import write_ml100k_slice
from typer.testing import CliRunner

from distillrec.cli import app
from distillrec.config import DatasetConfig, MultiTaskConfig
from distillrec.data.impressions import Impressions, from_ratings, split_by_time
from distillrec.evaluate.binary import auc, gauc, logloss, per_user_auc
from distillrec.evaluate.ranking import evaluate
from distillrec.layers.multitask import MMoE, SharedBottom, make_bottom
from distillrec.multitask.esmm import ESMM, log_ctcvr, probabilities
from distillrec.multitask.objective import MultiTaskObjective, group_listwise_kl, soft_label_loss
from distillrec.multitask.params import params_from
from distillrec.multitask.train import (
    catalogue_scores,
    evaluate_tasks,
    fit_multitask,
    labels_of,
    make_model,
    positive_interactions,
    predict_logits,
)
from distillrec.recommend import Request, load
from distillrec.stages.multitask import build_impressions


def test_binary_metrics_by_hand():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts one half
    assert math.isnan(auc([1, 1], [0.2, 0.3]))
    # user 0: AUC 1 over 2 rows; user 1: positives 0.6, 0.2 against negatives 0.3, 0.1: 3 of 4 pairs, AUC 0.75
    users = [0, 0, 1, 1, 1, 1]
    labels = [0, 1, 1, 0, 1, 0]
    scores = [0.1, 0.9, 0.6, 0.3, 0.2, 0.1]
    kept, values, counts = per_user_auc(users, labels, scores)
    assert kept.tolist() == [0, 1] and values.tolist() == [1.0, 0.75] and counts.tolist() == [2, 4]
    assert gauc(users, labels, scores) == pytest.approx((2 * 1.0 + 4 * 0.75) / 6)
    assert math.isnan(gauc([0, 0, 1], [1, 1, 0], [0.1, 0.2, 0.3]))  # no user has both classes
    assert gauc([0, 0, 1], [1, 0, 0], [0.1, 0.2, 0.3]) == 0.0  # user 0 ranks its negative first
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert logloss([1, 0], [0.8, 0.4]) == pytest.approx(expected)
    with pytest.raises(ValueError, match="0 or 1"):
        auc([0, 2], [0.1, 0.2])


def test_esmm_factorises_conversion_over_the_whole_impression_space():
    ctr, cvr = torch.tensor([0.3, -2.0, 4.0]), torch.tensor([1.0, 0.5, -30.0])
    p = probabilities(ctr, cvr)
    assert torch.allclose(p["ctcvr"], torch.sigmoid(ctr) * torch.sigmoid(cvr))
    assert torch.allclose(log_ctcvr(ctr, cvr).exp(), p["ctcvr"])
    # stored value: p = sigmoid(0.3) * sigmoid(1.0) = 0.574443 * 0.731059 = 0.419952; BCE against 1 and 0.2
    value = soft_label_loss(torch.tensor([0.3, 0.3]), torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.2]))
    by_hand = (-math.log(0.419952) - (0.2 * math.log(0.419952) + 0.8 * math.log(1 - 0.419952))) / 2
    assert value.item() == pytest.approx(by_hand, rel=1e-5)
    # saturated logits: the exact loss and a gradient that still points the right way (log(1 - p) from logits:
    # at a = b = 20, 1 - p = 2 e^-20 to first order, so the loss against 0 is 20 - log 2)
    a, b = torch.tensor([20.0], requires_grad=True), torch.tensor([20.0], requires_grad=True)
    loss = soft_label_loss(a, b, torch.tensor([0.0]))
    assert loss.item() == pytest.approx(20 - math.log(2), rel=1e-4)
    loss.backward()
    assert a.grad.item() > 0.4 and b.grad.item() > 0.4  # push both logits down
    assert torch.isfinite(soft_label_loss(torch.tensor([-80.0]), torch.tensor([-80.0]), torch.tensor([1.0])))


def test_group_listwise_kl_by_hand():
    # group 0: teacher logits (0, log 3) -> (0.25, 0.75); student (1, 1) -> (0.5, 0.5); group 1 alone: ignored
    student = torch.tensor([1.0, 1.0, 5.0])
    teacher = torch.tensor([0.0, math.log(3.0), -1.0])
    groups = torch.tensor([0, 0, 1])
    by_hand = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert group_listwise_kl(student, teacher, groups).item() == pytest.approx(by_hand, rel=1e-6)
    assert group_listwise_kl(teacher, teacher, groups).item() == pytest.approx(0.0, abs=1e-7)
    # a shift within a group changes nothing (a ranking, not a scale); temperature 2 halves the logits
    shifted = student + torch.tensor([7.0, 7.0, 0.0])
    assert group_listwise_kl(shifted, teacher, groups).item() == pytest.approx(by_hand, rel=1e-6)
    half = group_listwise_kl(student, teacher * 2, groups, temperature=2.0).item()
    assert half == pytest.approx(by_hand, rel=1e-6)


def test_objective_terms_and_uncertainty_weighting():
    torch.manual_seed(0)
    model = ESMM(5, 7, dim=4, hidden=8, bottom="shared")
    batch = {
        "users": torch.tensor([0, 0, 1, 2]),
        "items": torch.tensor([1, 2, 3, 4]),
        "click": torch.tensor([1.0, 0.0, 1.0, 0.0]),
        "ctcvr": torch.tensor([1.0, 0.0, 0.0, 0.0]),
        "groups": torch.tensor([0, 0, 1, 2]),
        "teacher_ctr": torch.tensor([2.0, -1.0, 1.0, -3.0]),
        "teacher_cvr": torch.tensor([1.0, 0.0, -1.0, 0.0]),
    }
    ctr, cvr = model(batch["users"], batch["items"])
    ctr_loss = torch.nn.functional.binary_cross_entropy_with_logits(ctr, batch["click"])
    ctcvr_loss = soft_label_loss(ctr, cvr, batch["ctcvr"])
    plain = MultiTaskObjective()(model, batch)
    assert plain.item() == pytest.approx((ctr_loss + ctcvr_loss).item(), rel=1e-6)
    weighted = MultiTaskObjective(task_weights=(0.5, 2.0))(model, batch)
    assert weighted.item() == pytest.approx((0.5 * ctr_loss + 2 * ctcvr_loss).item(), rel=1e-6)
    uncertain = MultiTaskObjective("uncertainty")
    assert uncertain(model, batch).item() == pytest.approx(plain.item(), rel=1e-6)  # log-variances start at 0
    uncertain(model, batch).backward()
    assert uncertain.log_vars.grad is not None and uncertain.log_vars.grad.abs().sum() > 0
    soft = MultiTaskObjective(kd=("soft-ctr",), kd_weight=0.5)(model, batch)
    teacher_p = torch.sigmoid(batch["teacher_ctr"])
    kd = torch.nn.functional.binary_cross_entropy_with_logits(ctr, teacher_p)
    assert soft.item() == pytest.approx((plain + 0.5 * kd).item(), rel=1e-6)
    with pytest.raises(ValueError, match="unknown multi-task KD term 'soft'"):
        MultiTaskObjective(kd=("soft",))


def test_bottoms():
    x = torch.randn(6, 10)
    shared = SharedBottom(10, 8, 2)(x)
    assert len(shared) == 2 and shared[0] is shared[1]
    mmoe = MMoE(10, 8, 2, n_experts=3)
    a, b = mmoe(x)
    assert a.shape == b.shape == (6, 8) and not torch.allclose(a, b)  # each task its own mixture
    gates = torch.softmax(mmoe.gates[0](x), dim=-1)
    assert torch.allclose(gates.sum(-1), torch.ones(6))
    with pytest.raises(ValueError, match="shared, mmoe"):
        make_bottom("moe", 10, 8, 2)


def _synthetic(seed: int = 0) -> tuple[Impressions, Impressions, Impressions]:
    """Users and items in two groups: a user clicks (and converts on) the items of their own group."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 60, 40
    users = np.repeat(np.arange(n_users), 12)
    items = np.array([rng.choice(20) + 20 * (u % 2) for u in users])
    ratings = rng.choice([3.0, 5.0], len(users))
    times = np.arange(len(users)) % 12 + 100 * users
    imp = from_ratings(users, items, times, ratings, n_users, n_items, negatives_per_click=2.0, seed=seed)
    return split_by_time(imp, 0.15, 0.15)


def test_training_learns_and_a_student_follows_its_teacher():
    train, valid, test = _synthetic()
    params = params_from(
        {"dim": 8, "hidden": 16, "max_epochs": 15, "patience": 15, "batch_size": 64, "lr": 0.01}
    )
    teacher = make_model(train.n_users, train.n_items, params)
    fit_multitask(teacher, train, valid, params)
    metrics, per_user = evaluate_tasks(teacher, test)
    assert metrics["ctr"]["AUC"] > 0.75  # the group structure is learnt
    assert set(per_user) == {"ctr", "cvr", "ctcvr"}
    logits = predict_logits(teacher, train.users, train.items)
    # a student taught by the teacher's soft labels alone (task weights 0) comes to score as the teacher does,
    # more than the same student trained on the labels
    agreement = {}
    for kd in (("soft-ctr",), ()):
        weights = (0.0, 0.0) if kd else (1.0, 1.0)
        changes = {"task_weights": weights, "kd": kd, "seed": 1, "max_epochs": 30, "patience": 30, "lr": 0.02}
        student = make_model(train.n_users, train.n_items, params_from(params.model_dump(), changes))
        fit_multitask(student, train, valid, params_from(params.model_dump(), changes), teacher_logits=logits)
        scores = predict_logits(student, train.users, train.items)[0]
        agreement[kd] = np.corrcoef(scores, logits[0])[0, 1]
    assert agreement[("soft-ctr",)] > agreement[()] + 0.05, agreement
    kd_params = params_from(params.model_dump(), {"kd": ("soft-ctr",)})
    with pytest.raises(ValueError, match="need the teacher's logits"):
        fit_multitask(student, train, valid, kd_params)


def test_config_and_command_errors(tmp_path):
    with pytest.raises(ValueError, match="start with 'alone'"):
        MultiTaskConfig(variants=["kd-ctr"])
    with pytest.raises(ValueError, match="dimm: unknown key"):
        MultiTaskConfig(student={"dimm": 4})
    result = CliRunner().invoke(
        app, ["multitask", "ml-100k", "--out", str(tmp_path), "--variants", "kd-multi"]
    )
    assert result.exit_code == 2 and "--variants" in result.output
    result = CliRunner().invoke(app, ["multitask", "ml-100k", "--out", str(tmp_path), "--bottom", "moe"])
    assert result.exit_code == 2 and "--bottom" in result.output


@pytest.fixture(scope="module")
def slice_120(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ml100k-120")
    return write_ml100k_slice(data_dir, folder, n_users=120, ratings=True)


def test_the_comparison_runs_from_the_command_and_resumes(slice_120, tmp_path, monkeypatch):
    from distillrec.stages.multitask import run_multitask

    out = tmp_path / "mt"
    args = ["multitask", str(slice_120), "--out", str(out), "--seeds", "0,1", "--variants", "alone,kd-multi"]
    result = CliRunner().invoke(app, [*args, "--max-epochs", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "multitask.json").read_text())
    assert set(summary["students"]) == {"alone", "kd-multi"}
    assert summary["students_fraction_of_teacher"] < 0.1
    assert set(summary["comparisons"]["kd-multi vs alone"]) == {
        "conversion_NDCG@10",
        "ctr_AUC",
        "cvr_AUC",
        "ctcvr_AUC",
    }
    impressions = summary["impressions"]
    assert impressions["train"]["clicks"] + impressions["valid"]["clicks"] + impressions["test"]["clicks"] > 0
    # each student's model folder: read back by distillrec.load, it scores as the trained model and ranks the
    # held-out conversions as the comparison measured them
    folder = out / "students" / "kd-multi-seed1"
    saved = load(folder / "model")
    params = params_from(json.loads((folder / "result.json").read_text())["hparams"])
    dataset_config = DatasetConfig(source=str(slice_120))
    _, _, (train, valid, test) = build_impressions(dataset_config, MultiTaskConfig())
    trained = make_model(train.n_users, train.n_items, params)
    trained.load_state_dict(torch.load(folder / "state.pt", map_location="cpu", weights_only=True))
    users = np.arange(5)
    scores_before = saved.model.score(users, saved.catalog.history)
    assert np.array_equal(scores_before, catalogue_scores(trained, users, train.n_items))
    ranking = evaluate(
        saved.model, saved.catalog.history, positive_interactions(test, labels_of(test)[1]), ks=(10, 20)
    )
    result = json.loads((folder / "result.json").read_text())["conversion_ranking"]
    assert ranking.summary["NDCG@10"] == pytest.approx(result["NDCG@10"], abs=1e-12)
    user = saved.catalog.user_ids[0]
    scores = catalogue_scores(trained, np.array([0]), train.n_items)[0]
    scores[saved.catalog.history.sequence(0)] = -np.inf  # the user's clicks are not recommended again
    top = [str(saved.catalog.item_ids[i]) for i in np.argsort(-scores, kind="stable")[:5]]
    assert [item for item, _ in saved.recommend(user=user, k=5)] == top
    assert saved.rank([Request(user="nobody")])[0].cold_start  # a user it was not trained on
    with pytest.raises(TypeError, match="distillrec multitask"):
        saved.model.fit(saved.catalog.history)
    # a second run reads every finished model back: nothing trains again, the same summary
    import distillrec.stages.multitask as stage

    monkeypatch.setattr(stage, "fit_multitask", lambda *a, **k: pytest.fail("trained again"))
    shutil.rmtree(folder / "model")  # a finished student whose folder is missing gets it from its weights
    shared = {"bottom": "mmoe", "weighting": "fixed", "max_epochs": 2}  # what the command passed
    settings = MultiTaskConfig(variants=["alone", "kd-multi"], teacher=shared, student=shared)
    dataset = DatasetConfig(source=str(slice_120))
    again = run_multitask(dataset, settings, out, [0, 1], progress=False, log=lambda m: None)
    assert again["students"] == summary["students"] and again["comparisons"] == summary["comparisons"]
    assert np.array_equal(load(folder / "model").model.score(users, saved.catalog.history), scores_before)
    other = MultiTaskConfig(variants=["alone"], teacher=shared, student={**shared, "dim": 4})
    with pytest.raises(ValueError, match="other settings"):
        run_multitask(dataset, other, out, [0], progress=False, log=lambda m: None)


def test_the_command_reads_a_users_own_impressions(slice_120, tmp_path):
    dataset, user_ids, parts = build_impressions(DatasetConfig(source=str(slice_120)), MultiTaskConfig())
    assert user_ids is dataset.user_ids  # impressions built from the ratings: the dataset's users
    rows = []
    for part in parts:
        for u, i, t, c, v in zip(part.users, part.items, part.timestamps, *part.labels.values(), strict=True):
            rows.append(f"u{user_ids[u]}\t{dataset.item_ids[i]}\t{t}\t{int(c)}\t{int(v)}")
    table = tmp_path / "mine.tsv"
    table.write_text("user\titem_id\ttimestamp\tclick\tbuy\n" + "\n".join(rows) + "\n")
    out = tmp_path / "mt"
    args = ["multitask", str(slice_120), "--out", str(out), "--seeds", "0", "--variants", "alone"]
    args += ["--impressions", str(table), "--behaviours", "click,buy", "--max-epochs", "1", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "missing column(s) ['user_id']" in " ".join(result.output.split())
    table.write_text(table.read_text().replace("user\t", "user_id\t", 1))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "multitask.json").read_text())
    assert summary["impressions"]["train"]["impressions"] == len(parts[0])  # the same rows, read back
    # the saved student serves the table's own user ids
    saved = load(out / "students" / "alone-seed0" / "model")
    assert saved.catalog.user_ids.tolist() == sorted(
        f"u{u}" for u in user_ids
    )  # user index i: the i-th sorted id
    assert not saved.rank([Request(user=f"u{user_ids[0]}", k=3)])[0].cold_start


def test_a_run_config_with_a_multitask_section(slice_120, tmp_path, monkeypatch):
    from distillrec.config import parse_config
    from distillrec.pipeline import run_pipeline

    monkeypatch.setenv("DISTILLREC_CACHE_DIR", str(tmp_path / "cache"))
    tiny = {"max_epochs": 1, "dim": 4, "hidden": 8}
    config = parse_config(
        {
            "name": "mt",
            "dataset": {"source": str(slice_120)},
            "baselines": {"models": ["mostpop"]},
            "teacher": {"dim": 16, "max_epochs": 1, "top_k": 10, "adapter_hidden": 16, "max_len": 20},
            "multitask": {"variants": ["alone", "kd-soft"], "teacher": tiny, "student": tiny},
            "progress": False,
        }
    )
    run = run_pipeline(
        config, runs_root=tmp_path / "runs", run_dir=tmp_path / "runs" / "mt-1", log=lambda m: None
    )
    summary = json.loads((run / "multitask" / "multitask.json").read_text())
    merged = json.loads((run / "metrics.json").read_text())
    assert set(merged["multitask"]["models"]) == {"teacher", "alone", "kd-soft"}
    row = merged["multitask"]["models"]["kd-soft"]
    assert row["conversion_NDCG@10"] == summary["students"]["kd-soft"]["conversion_NDCG@10"]["mean"]
    assert row["p_vs_alone"] == summary["comparisons"]["kd-soft vs alone"]["conversion_NDCG@10"]["t_pvalue"]
    assert 'id="multitask"' in (run / "report.html").read_text()
    with pytest.raises(ValueError, match="multitask.variants"):
        parse_config({"name": "x", "dataset": {"source": "ml-100k"}, "multitask": {"variants": ["kd-soft"]}})


def test_gradnorm_balances_the_tasks_gradient_norms_and_leaves_the_model_gradient_alone():
    torch.manual_seed(0)
    model = ESMM(5, 7, dim=4, hidden=8, bottom="mmoe", n_experts=2)
    batch = {
        "users": torch.tensor([0, 0, 1, 2, 3, 4]),
        "items": torch.tensor([1, 2, 3, 4, 5, 6]),
        "click": torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0]),
        "ctcvr": torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        "groups": torch.tensor([0, 0, 1, 2, 3, 4]),
    }
    ctr, cvr = model(batch["users"], batch["items"])
    losses = [
        torch.nn.functional.binary_cross_entropy_with_logits(ctr, batch["click"]),
        soft_label_loss(ctr, cvr, batch["ctcvr"]),
    ]
    norms = []
    for task_loss in losses:
        grads = torch.autograd.grad(task_loss, model.last_shared(), retain_graph=True)
        norms.append(math.sqrt(sum(float((g**2).sum()) for g in grads)))
    # first batch: weights 1 and 1, every loss ratio 1, so the target is the mean norm
    by_hand = sum(x.item() for x in losses) + sum(abs(n - sum(norms) / 2) for n in norms)
    objective = MultiTaskObjective("gradnorm")
    value = objective(model, batch)
    assert value.item() == pytest.approx(by_hand, rel=1e-5)
    assert torch.allclose(objective.initial_losses, torch.tensor([x.item() for x in losses]))
    value.backward()
    # the weight of the task with the larger gradient norm is pushed down
    larger = int(np.argmax(norms))
    assert objective.weight_logits.grad[larger] > 0 > objective.weight_logits.grad[1 - larger]
    gradnorm_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    MultiTaskObjective()(model, batch).backward()  # fixed weights 1 and 1: the same model gradient
    for a, b in zip(gradnorm_grads, model.parameters(), strict=True):
        assert torch.allclose(a, b.grad, atol=1e-6)


def test_an_interrupted_training_resumes_to_the_same_weights(tmp_path):
    train, valid, _ = _synthetic()
    base = {"dim": 4, "hidden": 8, "batch_size": 128, "patience": 10, "weighting": "gradnorm", "seed": 2}
    whole = make_model(train.n_users, train.n_items, params_from(base, {"max_epochs": 4}))
    fit_multitask(whole, train, valid, params_from(base, {"max_epochs": 4}))
    first = make_model(train.n_users, train.n_items, params_from(base, {"max_epochs": 2}))
    fit_multitask(first, train, valid, params_from(base, {"max_epochs": 2}), checkpoint_dir=tmp_path)
    resumed = make_model(train.n_users, train.n_items, params_from(base, {"max_epochs": 4}))
    result = fit_multitask(
        resumed, train, valid, params_from(base, {"max_epochs": 4}), checkpoint_dir=tmp_path
    )
    assert result.resumed_from == 2
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_click_profiles_hold_only_earlier_clicks():
    from distillrec.multitask.profiles import ClickProfiles

    # user 0 clicks item 1 at t=10 and item 2 at t=20 (and not item 0 at t=15); user 1 clicks nothing
    imp = Impressions(
        np.array([0, 0, 0, 1]),
        np.array([1, 0, 2, 0]),
        np.array([10, 15, 20, 5]),
        {"click": np.array([1.0, 0.0, 1.0, 0.0])},
        2,
        3,
    )
    vectors = np.array([[1.0, 0.0], [0.0, 2.0], [4.0, 0.0]], dtype=np.float32)
    profiles = ClickProfiles(imp, vectors, imp.labels["click"])
    at = profiles.at(imp.users, imp.timestamps)
    # its own click never enters a row's profile: t=10 sees nothing, t=15 and t=20 see item 1 only
    np.testing.assert_allclose(at, [[0, 0], [0, 2], [0, 2], [0, 0]])
    np.testing.assert_allclose(profiles.final(), [[2, 1], [0, 0]])  # every training click: items 1 and 2
    np.testing.assert_allclose(profiles.at(np.array([0]), np.array([10**9])), [[2, 1]])  # after training


def test_a_saved_student_scores_a_known_user_without_clicks(tmp_path):
    from distillrec.artifact import Catalog, save_model
    from distillrec.data.interactions import Interactions
    from distillrec.multitask.served import MultiTaskStudent

    params = params_from({"dim": 4, "hidden": 8})
    model = make_model(3, 6, params)
    history = Interactions.from_arrays([0, 0, 2], [1, 2, 5], [1, 2, 3], 3, 6)  # user "b" has no clicks
    catalog = Catalog(np.array(["a", "b", "c"]), np.array([f"i{i}" for i in range(6)]), history)
    save_model(MultiTaskStudent.from_trained(model, params), tmp_path / "m", catalog, history)
    saved = load(tmp_path / "m")
    (answer,) = saved.rank([Request(user="b", k=6)])
    expected = catalogue_scores(model, np.array([1]), 6)[0]
    assert not answer.cold_start and answer.items == [f"i{i}" for i in np.argsort(-expected, kind="stable")]
    assert saved.rank([Request(user="z")])[0].cold_start  # unknown: the most clicked items
