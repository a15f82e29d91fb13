"""The text-only model with its item vectors as the encoder gives them and centred (the table's mean vector
taken out, `TextSimilarity(centre=True)`), on each dataset: how much of the language model's knowledge a plain
cosine reads, and the setting the teacher stage now picks on validation (`stages/teacher.tuned_text_only`).

    .venv/bin/python benchmarks/text_only.py ml-100k ml-latest-small ml-1m amazon-beauty amazon-health

The item texts are encoded as the teacher stage encodes them (the default `TeacherConfig`: all-MiniLM-L6-v2,
through the embedding cache, so a dataset whose teacher ran here encodes nothing). Each model is evaluated
once on validation and once on the test, in full ranking, with head / tail / cold slices (`result_row`).
Writes `benchmarks/results/text_only/<dataset>.json`: `{"raw", "centred"}` rows, the validation pick, and the
command; rendered by `benchmarks/render.py text-only`.

With `--encoder-tuning-pairs N` the encoder is first tuned on N co-occurring item pairs of each dataset's training
histories (and a tenth as many word-dropout views; `teachers/tuned_encoder.py`, as the teacher option
`encoder_tuning_pairs` tunes it), with random or, `--length-sorted`, length-sorted batches (the teacher option
`encoder_tuning_length_sorted`); the tuned encoder is kept under `--work` and the result is
`<dataset>-tuned-<N>[-sorted].json`, with the tuning's time:

    .venv/bin/python benchmarks/text_only.py amazon-beauty --encoder-tuning-pairs 20000 [--length-sorted]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DISTILLREC_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))

from distillrec.config import DatasetConfig, SplitConfig, TeacherConfig  # noqa: E402
from distillrec.models.text_similarity import TextSimilarity  # noqa: E402
from distillrec.stages.data import prepare_data  # noqa: E402
from distillrec.stages.teacher import TUNED_ENCODER, encode_items, result_row, tuned_text_only  # noqa: E402
from distillrec.teachers.tuned_encoder import read_tuning  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--encoder-tuning-pairs", type=int, default=0, help="tune the encoder first (0: no)")
    parser.add_argument("--length-sorted", action="store_true", help="tune with length-sorted batches")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path.home() / ".cache" / "distillrec" / "text-only",
        help="where tuned encoders are kept (<work>/<result name>/tuned_encoder) and reused",
    )
    args = parser.parse_args()
    out_dir = ROOT / "benchmarks" / "results" / "text_only"
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = args.encoder_tuning_pairs
    settings = TeacherConfig(encoder_tuning_pairs=pairs, encoder_tuning_length_sorted=args.length_sorted)
    suffix = f"-tuned-{pairs}{'-sorted' if args.length_sorted else ''}" if pairs else ""
    for name in args.datasets:
        data = prepare_data(DatasetConfig(source=name), SplitConfig())
        work = args.work / f"{name}{suffix}"
        start = time.perf_counter()
        encoded = encode_items(data, settings, work, progress=pairs > 0)
        seconds = time.perf_counter() - start
        rows = {
            label: result_row(
                "text_only",
                TextSimilarity(encoded.vectors, centre=centre).fit(data.split.train),
                data.split,
                0.0,
            )
            for label, centre in (("raw", False), ("centred", True))
        }
        tuning_record = {}
        if pairs:
            done = read_tuning(work / TUNED_ENCODER)
            tuning_record = {
                "tuning": done["record"],
                "tuning_seconds": done["seconds"],  # when it was tuned (a reused encoder is not tuned again)
                "tune_and_encode_seconds": round(seconds, 1),
            }
        picked = "centred" if tuned_text_only(encoded.vectors, data.split).centre else "raw"
        result = {
            "dataset": name,
            "encoder": encoded.encoder_identity,
            "items": len(encoded.texts),
            "rows": rows,
            "picked_on_validation": picked,
            **tuning_record,
            "command": "benchmarks/text_only.py " + " ".join(sys.argv[1:]),
        }
        (out_dir / f"{name}{suffix}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(
            f"{name}: test NDCG@10 raw {rows['raw']['test']['NDCG@10']:.4f}, centred "
            f"{rows['centred']['test']['NDCG@10']:.4f} (validation picks {picked})",
            flush=True,
        )


if __name__ == "__main__":
    main()
