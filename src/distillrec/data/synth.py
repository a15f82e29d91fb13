"""Synthetic interaction logs with item text, at any size: for scaling runs where no public dataset of the size
fits (1M users x 100K items x 10M interactions), and for tests that need a known structure.

`synthesize(n_users, n_items, n_interactions, out)` writes a generic-format folder (`interactions.parquet`:
user_id, item_id, timestamp; `items.parquet`: item_id, title, genres) that `distillrec run` and every command
read like a user's own data. What it holds:

- **topics**: `n_topics` topics with power-law sizes; each item belongs to one.
- **item popularity**: power law (Zipf exponent `zipf`, ~1 as in real catalogues): within a topic, item i is
  drawn with probability proportional to its global weight `1 / (rank + 10) ** zipf`.
- **users with drifting interests**: each user has a first and a second topic (drawn by topic size); at position t
  of a history of length L the next item comes from the second topic with probability t / L (interests drift
  from one to the other), and from a random topic with probability `explore`.
- **history lengths**: log-normal (a long tail of heavy users), at least `min_length`, scaled so that the total
  is `n_interactions`.
- **time**: each user starts at a uniform time in a three-year span and acts every exponential(1 day) after.
- **item text**: a title of two words of the item's topic and two common words, and the topic's name as its
  genre, from a vocabulary of made-up words: the text says which topic an item is in, so a teacher that reads
  it learns something an id model must learn from co-occurrence.

A (user, item) pair that repeats is drawn again (up to five times) from the same topic; what remains (1.6% of
rows at 10K users x 10K items x 200K interactions, 3% with 5K items) the loader drops (`duplicates="first"`).
Generation is vectorised numpy: 10M interactions take about a minute and a few GB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SynthSettings", "synthesize"]

_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ner",
    "tu",
    "sa",
    "vel",
    "dor",
    "pi",
    "ran",
    "zu",
    "mo",
    "ti",
    "bex",
    "ga",
    "ul",
)
_SPAN_SECONDS = 3 * 365 * 86_400
_START = 1_600_000_000  # 2020-09-13, Unix seconds
_REDRAWS = 5


@dataclass(frozen=True)
class SynthSettings:
    n_topics: int = 50
    zipf: float = 1.0
    explore: float = 0.1
    min_length: int = 5
    length_sigma: float = 1.0  # of the log-normal history lengths
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_topics < 1 or self.min_length < 2 or not 0 <= self.explore <= 1 or self.zipf < 0:
            raise ValueError(
                f"synth settings: n_topics >= 1, min_length >= 2, 0 <= explore <= 1, zipf >= 0; got {self}"
            )


def synthesize(
    n_users: int,
    n_items: int,
    n_interactions: int,
    out: str | Path,
    settings: SynthSettings | None = None,
) -> Path:
    """Write a synthetic dataset folder (see the module docstring) to `out`; returns it."""
    settings = settings or SynthSettings()
    if n_users < 1 or n_items < settings.n_topics:
        raise ValueError(
            f"need n_users >= 1 and n_items >= n_topics ({settings.n_topics}); got {n_users}, {n_items}"
        )
    if n_interactions < n_users * settings.min_length:
        raise ValueError(
            f"n_interactions {n_interactions:,} < n_users x min_length ({n_users:,} x {settings.min_length}): "
            "lower --users or raise --interactions"
        )
    import pandas as pd

    rng = np.random.default_rng(settings.seed)
    topic_of, weight = _catalogue(n_items, settings, rng)
    lengths = _lengths(n_users, n_interactions, settings, rng)
    users = np.repeat(np.arange(n_users, dtype=np.int64), lengths)  # (n,) each row's user
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    position = np.arange(len(users), dtype=np.int64) - starts[users]  # t = 0 .. L - 1 within the user
    topics = _topics(users, position, lengths, topic_of, settings, rng)
    items = _items_in_topics(topics, topic_of, weight, rng)
    for _ in range(_REDRAWS):  # a user's repeated item, drawn again from the same topic
        repeated = _repeats(users, items, n_items)
        if not repeated.any():
            break
        items[repeated] = _items_in_topics(topics[repeated], topic_of, weight, rng)
    gaps = rng.exponential(86_400.0, size=len(users))
    first = rng.uniform(0, _SPAN_SECONDS, size=n_users)
    times = np.cumsum(gaps)
    times = _START + first[users] + times - (times[starts] - gaps[starts])[users]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {"user_id": users + 1, "item_id": items + 1, "timestamp": times.astype(np.int64)}
    ).to_parquet(out / "interactions.parquet", index=False)
    titles, genres = _texts(topic_of, settings.n_topics, rng)
    pd.DataFrame({"item_id": np.arange(1, n_items + 1), "title": titles, "genres": genres}).to_parquet(
        out / "items.parquet", index=False
    )
    return out


def _catalogue(
    n_items: int, settings: SynthSettings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's topic (power-law topic sizes, every topic non-empty) and popularity weight."""
    sizes = 1.0 / np.arange(1, settings.n_topics + 1) ** 0.7
    topic_of = np.concatenate(
        [
            np.arange(settings.n_topics),
            rng.choice(settings.n_topics, n_items - settings.n_topics, p=sizes / sizes.sum()),
        ]
    )
    topic_of = topic_of[rng.permutation(n_items)]
    rank = rng.permutation(n_items)  # popularity rank, independent of the topic
    weight = 1.0 / (rank + 10.0) ** settings.zipf
    return topic_of.astype(np.int64), weight


def _lengths(
    n_users: int, n_interactions: int, settings: SynthSettings, rng: np.random.Generator
) -> np.ndarray:
    """Log-normal history lengths >= min_length summing to exactly n_interactions."""
    raw = rng.lognormal(0.0, settings.length_sigma, size=n_users)
    extra = n_interactions - n_users * settings.min_length
    lengths = settings.min_length + np.floor(raw / raw.sum() * extra).astype(np.int64)
    short = n_interactions - int(lengths.sum())  # what flooring left: one more to the heaviest users
    lengths[np.argsort(-raw)[:short]] += 1
    return lengths


def _topics(users, position, lengths, topic_of, settings, rng) -> np.ndarray:
    """The topic of each row: the user's first topic drifting to the second, sometimes a random one."""
    n_users = len(lengths)
    by_size = np.bincount(topic_of, minlength=settings.n_topics) / len(topic_of)
    first = rng.choice(settings.n_topics, n_users, p=by_size)
    second = rng.choice(settings.n_topics, n_users, p=by_size)
    drifted = rng.random(len(users)) < position / lengths[users]
    topics = np.where(drifted, second[users], first[users])
    explore = rng.random(len(users)) < settings.explore
    topics[explore] = rng.choice(settings.n_topics, int(explore.sum()), p=by_size)
    return topics


def _items_in_topics(topics, topic_of, weight, rng) -> np.ndarray:
    """An item of each row's topic, drawn by popularity: one search in the topics' stacked CDFs."""
    order = np.argsort(topic_of, kind="stable")  # items grouped by topic
    grouped_topic, grouped_weight = topic_of[order], weight[order]
    totals = np.bincount(grouped_topic, weights=grouped_weight)
    within = np.cumsum(grouped_weight) - np.concatenate([[0.0], np.cumsum(totals)])[grouped_topic]
    cdf = grouped_topic + within / totals[grouped_topic]  # topic k's items cover (k, k + 1]
    picked = np.searchsorted(cdf, topics + rng.random(len(topics)) * (1 - 1e-12), side="left")
    return order[np.minimum(picked, len(order) - 1)]


def _repeats(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """(n,) bool: the row repeats an earlier row's (user, item)."""
    _, first = np.unique(users * n_items + items, return_index=True)
    repeated = np.ones(len(users), dtype=bool)
    repeated[first] = False
    return repeated


def _texts(topic_of, n_topics, rng) -> tuple[list[str], list[str]]:
    """Titles (two topic words, two common words) and genres (the topic's name) from made-up words."""
    words = _words(n_topics * 12 + 400, rng)
    topic_words = np.array(words[: n_topics * 12]).reshape(n_topics, 12)
    common = np.array(words[n_topics * 12 :])
    n = len(topic_of)
    pick = rng.integers(1, 12, size=(n, 2))  # word 0 of a topic is its name
    own = topic_words[topic_of[:, None], pick]
    other = common[rng.integers(0, len(common), size=(n, 2))]
    titles = [
        f"{a.title()} {b} {c} {d}"
        for a, b, c, d in zip(own[:, 0], other[:, 0], own[:, 1], other[:, 1], strict=True)
    ]
    genres = list(topic_words[topic_of, 0])
    return titles, genres


def _words(n: int, rng: np.random.Generator) -> list[str]:
    """n distinct made-up words of two to four syllables."""
    seen: dict[str, None] = {}
    while len(seen) < n:
        count = rng.integers(2, 5)
        seen.setdefault("".join(rng.choice(_SYLLABLES, count)), None)
    return list(seen)
