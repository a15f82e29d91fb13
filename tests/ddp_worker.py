"""Started by tests/test_distributed.py, alone or under torchrun: train a SASRec student and the SASRec
baseline on a generic-format folder (the first users of ml-100k) and write rank 0's per-epoch histories.

    python tests/ddp_worker.py DATA_FOLDER OUT.json [CHECKPOINT_DIR MAX_EPOCHS]
    python -m torch.distributed.run --nproc-per-node 2 tests/ddp_worker.py DATA_FOLDER OUT.json

With CHECKPOINT_DIR, only the student trains, for MAX_EPOCHS, checkpointing there (a resume test).

    python tests/ddp_worker.py DATA_FOLDER OUT_FOLDER --export MODEL.pt

exports the SASRec baseline in MODEL.pt (trained for one epoch and saved there first when it does not exist)
as a teacher (`teachers/export.py`) into OUT_FOLDER/rank<r>: under torchrun every rank writes the whole export
from the ranks' shared-out chunks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from distillrec.data.dataset import load_dataset
from distillrec.data.split import make_split
from distillrec.models.sasrec import SASRec
from distillrec.students.registry import make_student
from distillrec.teachers.export import export_teacher
from distillrec.train import distributed

# dropout 0 (a mask would differ between one batch and its shards) and windows of equal length: every user of
# the slice has more than max_len + 3 ratings, so each shard of a batch holds the same number of positions and
# the averaged shard gradients are the whole batch's gradient
SETTINGS = {"max_len": 10, "batch_size": 64, "max_epochs": 4, "patience": 10, "seed": 3, "progress": False}


def main(folder: str, out: str, checkpoint_dir: str | None = None, max_epochs: str = "4") -> None:
    distributed.init_from_env("cpu")
    split = make_split(load_dataset(folder).interactions, "leave_one_out")
    if checkpoint_dir == "--export":
        model_path = Path(max_epochs)
        if model_path.exists():
            teacher = torch.load(model_path, weights_only=False)
        else:
            teacher = SASRec(dim=16, dropout=0.0, lr=0.005, **{**SETTINGS, "max_epochs": 1})
            torch.save(teacher.fit(split.train, split.valid), model_path)
        rank = distributed.world()[0]
        export_teacher(
            teacher, split.train, f"{out}/rank{rank}", {}, top_k=10, chunk_users=16, progress=False
        )
        distributed.close()
        return
    settings = {**SETTINGS, "max_epochs": int(max_epochs)}
    student = make_student("sasrec", dim=16, dropout=0.0, lr=0.005, **settings)
    student.fit(split.train, split.valid, checkpoint_dir=checkpoint_dir)
    histories = {"student": student.history_}
    if checkpoint_dir is None:
        baseline = SASRec(dim=16, dropout=0.0, lr=0.005, **settings).fit(split.train, split.valid)
        histories["sasrec"] = baseline.history_
    if distributed.is_main():
        with open(out, "w") as file:
            json.dump({"world": distributed.world()[1], "histories": histories}, file)
    distributed.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
