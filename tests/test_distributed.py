"""Devices and torchrun: the device names, the shard of a batch, 2 processes against 1 (the same training, to
float rounding), a resumed 2-process run, the pipeline under torchrun, and the commands that refuse it. The
GPU test runs where torch sees a CUDA GPU and is skipped elsewhere."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import write_ml100k_slice
from typer.testing import CliRunner

from distillrec.cli import app
from distillrec.config import ConfigError, parse_config
from distillrec.devices import resolve_device, to_device
from distillrec.train import distributed
from distillrec.train.loop import TrainConfig

WORKER = Path(__file__).parent / "ddp_worker.py"
NO_GPU = "torch sees no CUDA GPU on this machine (CI has none): the CUDA path is checked where one exists"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(n: int, *args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """`torchrun --nproc-per-node n ARGS` on a free port; a port taken between the check and the start (another
    test's process) is retried once on a new one."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    for attempt in range(2):
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n)]
        command += ["--master-addr", "127.0.0.1", "--master-port", str(_free_port()), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
        if done.returncode == 0 or "address already in use" not in done.stderr.lower() or attempt:
            break
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def slice_256(data_dir, tmp_path_factory) -> Path:
    return write_ml100k_slice(data_dir, tmp_path_factory.mktemp("ml100k-256"), n_users=256)


def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == (
        "cuda" if torch.cuda.is_available() else resolve_device("auto").type
    )
    for wrong in ("gpu", "cuda:x", "CPU", ""):
        with pytest.raises(ValueError, match="auto, cpu, cuda, cuda:N or mps"):
            resolve_device(wrong)
    with pytest.raises(ValueError, match="TrainConfig.device"):
        TrainConfig(device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_config_device_is_checked_and_left_out_of_stage_keys():
    base = {"name": "x", "dataset": {"source": "ml-100k"}}
    assert parse_config(base).device == "auto"
    assert parse_config({**base, "device": "cuda:1"}).device == "cuda:1"
    with pytest.raises(ConfigError, match="device"):
        parse_config({**base, "device": "gpu"})


def test_to_device_moves_nested_tensors_and_keeps_the_rest():
    batch = {"ids": torch.ones(2), "pair": (torch.zeros(1), 3), "progress": 0.5}
    moved = to_device(batch, torch.device("cpu"))
    assert moved["progress"] == 0.5 and moved["pair"][1] == 3 and torch.equal(moved["ids"], batch["ids"])


def test_shard_takes_every_nth_row_and_keeps_small_batches_whole(monkeypatch):
    rows = np.arange(7)
    assert np.array_equal(distributed.shard(rows), rows)  # one process
    monkeypatch.setattr(distributed, "world", lambda: (1, 2))
    assert distributed.shard(rows).tolist() == [1, 3, 5]
    assert distributed.shard(np.array([4])).tolist() == [4]  # fewer rows than ranks: every rank trains it


def _histories(path: Path) -> dict:
    return json.loads(path.read_text())


def test_two_processes_train_as_one(slice_256, tmp_path):
    """2 ranks (gloo), each on half of every batch, against 1 process with the same global batch: equal losses
    and validation NDCG@10 every epoch, for a student and for the SASRec baseline. Stated tolerance: 1e-4
    relative on the loss (float sums in another order), 1e-3 on NDCG@10."""
    env = {"DISTILLREC_DATA_DIR": os.environ.get("DISTILLREC_DATA_DIR", "")}
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    subprocess.run([sys.executable, str(WORKER), str(slice_256), str(one)], check=True, timeout=300)
    _torchrun(2, str(WORKER), str(slice_256), str(two), env=env)
    alone, together = _histories(one), _histories(two)
    assert (alone["world"], together["world"]) == (1, 2)
    for model in ("student", "sasrec"):
        a, b = alone["histories"][model], together["histories"][model]
        assert len(a) == len(b) == 4
        for x, y in zip(a, b, strict=True):
            assert y["loss"] == pytest.approx(x["loss"], rel=1e-4)
            assert y["valid_ndcg10"] == pytest.approx(x["valid_ndcg10"], abs=1e-3)
        assert a[-1]["loss"] < a[0]["loss"] - 0.1  # it learned something: the comparison is not of noise


def test_two_processes_resume_from_rank_0s_checkpoint(slice_256, tmp_path):
    """Interrupted after 2 epochs and resumed to 4 under torchrun: the same history as 4 epochs at once."""
    checkpoints = tmp_path / "checkpoints"
    first, resumed, straight = (tmp_path / f"{n}.json" for n in ("first", "resumed", "straight"))
    _torchrun(2, str(WORKER), str(slice_256), str(first), str(checkpoints), "2")
    assert (checkpoints / "last.pt").exists()
    _torchrun(2, str(WORKER), str(slice_256), str(resumed), str(checkpoints), "4")
    _torchrun(2, str(WORKER), str(slice_256), str(straight), str(tmp_path / "fresh"), "4")
    a, b = _histories(resumed)["histories"]["student"], _histories(straight)["histories"]["student"]
    assert [r["epoch"] for r in a] == [1, 2, 3, 4]
    for x, y in zip(a, b, strict=True):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-5)
        assert x["valid_ndcg10"] == pytest.approx(y["valid_ndcg10"], abs=1e-6)


def test_two_processes_export_what_one_does(slice_256, tmp_path):
    """The teacher export under torchrun: each rank computes every other chunk of users and writes the whole
    export; both ranks' arrays equal one process's, to the bit."""
    model = str(tmp_path / "teacher.pt")  # trained once, in one process: both exports read the same weights
    one = [sys.executable, str(WORKER), str(slice_256), str(tmp_path / "one"), "--export", model]
    subprocess.run(one, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})  # as torchrun's ranks run
    _torchrun(2, str(WORKER), str(slice_256), str(tmp_path / "two"), "--export", model)
    names = ("positions_topk_items", "positions_topk_scores", "user_hidden", "item_embeddings")
    for name in names:
        alone = np.load(tmp_path / "one" / "rank0" / f"{name}.npy")
        for rank in (0, 1):
            shared_out = np.load(tmp_path / "two" / f"rank{rank}" / f"{name}.npy")
            assert np.array_equal(shared_out, alone), (name, rank)
    # every user's last max_len = 10 training rows are covered (each of the 256 users has more)
    assert (np.load(tmp_path / "one" / "rank0" / "positions_topk_items.npy")[:, 0] >= 0).sum() == 256 * 10


def test_pipeline_under_torchrun_writes_one_run_folder(data_dir, tmp_path):
    """`torchrun --nproc-per-node 2 -m distillrec run CONFIG`: one run folder, written by rank 0 (report,
    every model), and no scratch copy left behind by rank 1."""
    (tmp_path / "slice").mkdir()
    source = write_ml100k_slice(data_dir, tmp_path / "slice", n_users=40, used_items_only=True)
    config = {
        "name": "ddp",
        "dataset": {"source": str(source), "min_item_interactions": 3},
        "baselines": {"models": ["mostpop", "sasrec"], "grids": {"sasrec": [{"dim": 8, "max_epochs": 2}]}},
        "teacher": {"dim": 16, "max_epochs": 2, "top_k": 10, "adapter_hidden": 16, "max_len": 50},
        "students": [
            {"name": "sasrec", "params": {"dim": 8, "max_epochs": 2, "max_len": 50}, "kd": ["soft"]}
        ],
        "device": "cpu",
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    runs = tmp_path / "runs"
    env = {"TMPDIR": str(scratch)}
    done = _torchrun(2, "-m", "distillrec", "run", str(path), "--runs-root", str(runs), "-q", env=env)
    folders = list(runs.iterdir())
    assert len(folders) == 1 and done.stdout.count("done:") + done.stderr.count("done:") == 1
    metrics = json.loads((folders[0] / "metrics.json").read_text())["models"]
    assert {"mostpop", "sasrec", "teacher", "sasrec-soft (KD)", "sasrec-soft (no KD)"} <= set(metrics)
    assert (folders[0] / "report.html").exists()
    assert not [p for p in scratch.iterdir() if p.name.startswith("distillrec-rank")]


def test_other_commands_refuse_torchrun(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = CliRunner().invoke(app, ["teacher", "ml-100k", "--out", "x"])
    assert result.exit_code == 2
    assert "only `distillrec run`" in result.output.replace("\n", " ")


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_gpu_training_agrees_with_cpu(slice_256):
    """The same student trained on the GPU and on the CPU: validation NDCG@10 within 0.01 each epoch; the
    GPU-trained model scores on the CPU after saving (its state is plain CPU arrays)."""
    from distillrec.data.dataset import load_dataset
    from distillrec.data.split import make_split
    from distillrec.students.registry import make_student

    split = make_split(load_dataset(slice_256).interactions, "leave_one_out")
    settings = {"dim": 16, "dropout": 0.0, "max_len": 10, "max_epochs": 3, "seed": 0, "progress": False}
    cpu = make_student("sasrec", device="cpu", **settings).fit(split.train, split.valid)
    gpu = make_student("sasrec", device="cuda", **settings).fit(split.train, split.valid)
    for x, y in zip(cpu.history_, gpu.history_, strict=True):
        assert y["valid_ndcg10"] == pytest.approx(x["valid_ndcg10"], abs=0.01)
    state = gpu.fitted_state()
    assert all(isinstance(v, np.ndarray) for v in state.values())
