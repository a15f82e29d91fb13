"""Ablation helper: a copy of a teacher folder whose item table comes from elsewhere, for `param_init`.

    .venv/bin/python benchmarks/item_table_source.py TEACHER_DIR id_only OUT_DIR   # the ID-only SASRec's table
    .venv/bin/python benchmarks/item_table_source.py TEACHER_DIR text OUT_DIR      # the raw MiniLM embeddings

`param_init` starts a student's item table at the PCA of the teacher's item table. The teacher's table mixes
what the language model knows of the item text (through the adapter) with what training learned from the
interactions; these two copies separate them. `id_only` takes the table of the ID-only SASRec that
`distillrec teacher --compare-id-only` trained with the same architecture and budget (its best epoch, from
`checkpoints/id_only/last.pt`): collaborative signal, no language model. `text` takes the frozen MiniLM
embeddings (`text_embeddings.npy`): the language model alone, no training. Every other file is linked to the
teacher's, so the soft labels are unchanged; the manifest records the source.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

SOURCES = ("id_only", "text")
REPLACED = ("item_embeddings.npy", "manifest.json")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("teacher", type=Path)
    parser.add_argument("source", choices=SOURCES)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()

    if args.source == "id_only":
        checkpoint = args.teacher / "checkpoints" / "id_only" / "last.pt"
        if not checkpoint.exists():
            raise SystemExit(f"{checkpoint}: no ID-only model; build the teacher with --compare-id-only")
        saved = torch.load(checkpoint, weights_only=False)
        state = saved.get("best_state") or saved["model"]
        table = state["item_embedding.embedding.weight"][1:].float().numpy()  # row 0 is padding
    else:
        table = np.load(args.teacher / "text_embeddings.npy")
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.teacher.iterdir():
        link = args.out / path.name
        if path.name not in REPLACED and path.name != "checkpoints" and not link.exists():
            link.symlink_to(path.resolve())
    np.save(args.out / "item_embeddings.npy", table.astype(np.float32))
    manifest = json.loads((args.teacher / "manifest.json").read_text())
    manifest["item_table_source"] = {
        "id_only": "ID-only SASRec, best epoch",
        "text": "frozen text embeddings",
    }[args.source]
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"{args.out}: item table {table.shape} from {args.source}")


if __name__ == "__main__":
    main()
