"""A text encoder tuned for recommendation: a sentence encoder fine-tuned so that items users take one after the
other have nearby texts (the idea of LLMEmb, AAAI 2025, and of Recformer's item-item contrastive stage).

Input: the training `Interactions`, each item's text, and a sentence-transformers model (a packaged name, a local
folder or a Hugging Face id, as `TextEncoder` takes). Pairs: every two items that follow each other in a user's
training history (items that co-occur), `pairs` of them sampled (seeded), plus for `text_views` of them two
attribute-dropout views of one item's text (random words left out), so the encoder keeps reading an item's own
text. With `length_sorted`, batches hold pairs of similar length (sorted by the longer text, the batches then
shuffled), so little of a batch is padding (Amazon Beauty's titles: 19 tokens on average, a random batch of 64
padded to 84). Its in-batch negatives are less random, though: on ml-100k and Amazon Beauty it tuned a weaker
encoder than random batches, the default (BENCHMARKS.md section 2). Loss: in-batch contrastive (InfoNCE;
MultipleNegativesRankingLoss in sentence-transformers' terms): a pair's second text must be the nearest, by
cosine / `temperature`, among every second text of the batch. Trained with AdamW for `epochs` on the CPU (20,000
pairs: 20 minutes on 2 busy cores for ml-100k with random batches, 23 for Amazon Beauty's 12k items with
length-sorted ones); saved as a sentence-transformers folder that `TextEncoder` loads like any other model, under
`out` (a finished `out` is reused when the model, the pairs, the texts and the settings are the same).

`read_tuning(out)` returns what a finished tuning recorded (its record, pairs and seconds; not the losses).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from distillrec.data.interactions import Interactions
from distillrec.teachers.text_encoder import resolve_model

__all__ = ["TuningSettings", "batch_order", "cooccurrence_pairs", "read_tuning", "tune_encoder"]

TUNING_FILE = "tuning.json"  # written into the tuned encoder's folder when the tuning finishes


@dataclass(frozen=True)
class TuningSettings:
    pairs: int = 20_000  # co-occurring item pairs sampled from the training histories
    text_views: int = 2_000  # pairs of two word-dropout views of one item's text
    word_dropout: float = 0.2
    epochs: int = 1
    batch_size: int = 64
    lr: float = 2e-5
    temperature: float = 0.05
    seed: int = 0
    length_sorted: bool = False  # batches of pairs of similar length (less padding; see the module docstring)

    def record(self) -> dict:
        """The settings as a finished tuning records them (`length_sorted` only when set: a tuning recorded
        before the option existed read random batches, and still matches `length_sorted=False`)."""
        return {k: v for k, v in self.__dict__.items() if not (k == "length_sorted" and not v)}


def cooccurrence_pairs(train: Interactions, n: int, seed: int = 0) -> np.ndarray:
    """(<= n, 2) item index pairs that follow each other in a user's training history (repeats of one item
    left out), sampled without replacement (seeded)."""
    indptr, items = train.sequences()
    first, second = items[:-1], items[1:]
    same_user = np.ones(len(first), dtype=bool)
    ends = indptr[1:-1] - 1  # a user's last item is not followed by the next user's first
    same_user[ends[ends >= 0]] = False
    keep = same_user & (first != second)
    pairs = np.stack([first[keep], second[keep]], axis=1).astype(np.int64)
    rng = np.random.default_rng(seed)
    return pairs[rng.choice(len(pairs), size=min(n, len(pairs)), replace=False)] if len(pairs) else pairs


def batch_order(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, length_sorted: bool = False
) -> list[np.ndarray]:
    """Indices of the pairs (their `lengths`) in batches of `batch_size`: a random permutation cut in order, or,
    `length_sorted`, that permutation sorted by length (stable: equal lengths stay shuffled), cut, and the batches
    shuffled."""
    order = rng.permutation(len(lengths))
    if length_sorted:
        order = order[np.argsort(lengths[order], kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if length_sorted:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _dropout_view(text: str, rate: float, rng: np.random.Generator) -> str:
    words = text.split()
    kept = [w for w in words if rng.random() >= rate]
    return " ".join(kept or words)


def tune_encoder(
    model: str | Path,
    texts: Sequence[str],
    train: Interactions,
    out: str | Path,
    settings: TuningSettings = TuningSettings(),
    progress: bool = True,
) -> Path:
    """Fine-tune `model` on `train`'s co-occurring items (see the module docstring); save it to `out` and return
    `out`. A finished `out` (holding `tuning.json` with the same settings) is returned as it is."""
    import hashlib

    from sentence_transformers import SentenceTransformer

    out = Path(out)
    if len(texts) != train.n_items:
        raise ValueError(f"{len(texts)} texts for {train.n_items} items")
    sampled = cooccurrence_pairs(train, settings.pairs, settings.seed)
    data = hashlib.sha256(sampled.tobytes() + "\n".join(texts).encode()).hexdigest()[
        :16
    ]  # what it learns from
    record = {"model": str(model), "data": data, "settings": settings.record()}
    done = out / TUNING_FILE
    if done.exists() and read_tuning(out)["record"] == record:
        return out
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    encoder = SentenceTransformer(str(resolve_model(model)), device="cpu", local_files_only=True)
    pairs = [(texts[a], texts[b]) for a, b in sampled]
    for i in rng.choice(len(texts), size=min(settings.text_views, len(texts)), replace=False):
        pairs.append(
            (
                _dropout_view(texts[i], settings.word_dropout, rng),
                _dropout_view(texts[i], settings.word_dropout, rng),
            )
        )
    if len(pairs) < 2:
        raise ValueError("fewer than 2 training pairs: nothing to tune the encoder on")
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=settings.lr)
    start = time.perf_counter()
    losses = []
    encoder.train()
    lengths = np.array([max(len(a), len(b)) for a, b in pairs])  # characters: the order of token counts
    for _ in range(settings.epochs):
        batches = batch_order(lengths, settings.batch_size, rng, settings.length_sorted)
        for batch in tqdm(
            batches, desc="tuning the encoder", unit="batch", disable=not progress, leave=False
        ):
            if len(batch) < 2:
                continue
            anchors = _embed(encoder, [pairs[i][0] for i in batch])  # (b, d)
            positives = _embed(encoder, [pairs[i][1] for i in batch])  # (b, d)
            logits = anchors @ positives.T / settings.temperature  # (b, b): the diagonal holds the pairs
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    encoder.eval()
    out.mkdir(parents=True, exist_ok=True)
    encoder.save(str(out))
    seconds = round(time.perf_counter() - start, 1)
    done.write_text(json.dumps({"record": record, "pairs": len(pairs), "seconds": seconds, "losses": losses}))
    return out


def read_tuning(out: str | Path) -> dict:
    """What the finished tuning in `out` recorded: `record` (model, data digest, settings), `pairs` and `seconds`
    (its per-batch losses left out)."""
    done = json.loads((Path(out) / TUNING_FILE).read_text())
    done.pop("losses", None)
    return done


def _embed(encoder, texts: list[str]) -> torch.Tensor:
    """(len(texts), d) unit sentence vectors, with gradients."""
    features = encoder.tokenize(texts)
    vectors = encoder(features)["sentence_embedding"]
    return torch.nn.functional.normalize(vectors, dim=1)
