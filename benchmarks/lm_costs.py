"""Benchmark: what the language models cost on this machine (item encoding, generative re-ranking).

    .venv/bin/python benchmarks/lm_costs.py                 # MiniLM fp32 vs bf16 on ml-1m item texts
    .venv/bin/python benchmarks/lm_costs.py --gemma-users 5 # + Gemma-3-270M re-ranking cost (needs the gemma extra)

fp32 and bf16 are timed alternately in one process (rounds), so the ratio is measured under the same load;
absolute times depend on what else the machine runs. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gemma-users", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from distillrec.data.dataset import load_dataset
    from distillrec.teachers.text import default_template
    from distillrec.teachers.text_encoder import TextEncoder

    ds = load_dataset(args.dataset)
    texts = default_template(ds.item_text.columns).render_items(ds.item_text)
    encoders = {
        "fp32": TextEncoder(bf16=False, progress=False),
        "bf16": TextEncoder(bf16=True, progress=False),
    }
    seconds = {k: [] for k in encoders}
    outputs = {}
    for _ in range(args.rounds):
        for name, encoder in encoders.items():
            start = time.perf_counter()
            outputs[name] = encoder.encode(texts)
            seconds[name].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in seconds.items()}
    cosine = np.sum(outputs["fp32"] * outputs["bf16"], axis=1)
    result = {
        "dataset": args.dataset,
        "texts": len(texts),
        "minilm_texts_per_s": {k: round(len(texts) / v, 1) for k, v in best.items()},
        "minilm_bf16_speedup": round(best["fp32"] / best["bf16"], 2),
        "minilm_fp32_bf16_cosine_mean": float(cosine.mean()),
        "minilm_fp32_bf16_cosine_min": float(cosine.min()),
    }
    if args.gemma_users:
        from distillrec.teachers.llm_scorer import LLMScorer

        rng = np.random.default_rng(0)
        titles = ds.item_text["title"].tolist()
        for precision in ("fp32", "bf16"):
            scorer = LLMScorer(bf16=precision == "bf16", progress=False)
            scorer.load()
            for n_cand in (20, 50):
                times = []
                for _ in range(args.gemma_users):
                    history = [titles[i] for i in rng.choice(len(titles), 10, replace=False)]
                    candidates = [titles[i] for i in rng.choice(len(titles), n_cand, replace=False)]
                    start = time.perf_counter()
                    scorer.score(history, candidates)
                    times.append(time.perf_counter() - start)
                result[f"gemma_{precision}_seconds_per_user_{n_cand}_candidates"] = round(
                    float(np.median(times)), 3
                )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
