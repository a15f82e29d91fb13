"""EmbeddingCache: hits and misses, invalidation, interrupted runs, and cached == live on the real MiniLM."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from distillrec.teachers.cache import EmbeddingCache
from distillrec.teachers.text_encoder import TextEncoder

TITLES = [
    "Toy Story (1995). Genres: Animation, Children's, Comedy",
    "Jumanji (1995). Genres: Adventure, Children's, Fantasy",
    "Grumpier Old Men (1995). Genres: Comedy, Romance",
    "Waiting to Exhale (1995). Genres: Comedy, Drama",
    "Father of the Bride Part II (1995). Genres: Comedy",
    "Heat (1995). Genres: Action, Crime, Thriller",
    "Sabrina (1995). Genres: Comedy, Romance",
]


class FakeEncoder:
    """Deterministic 8-d vectors from the text's hash; records what it was asked to encode."""

    dim = 8

    def __init__(self, identity: str = "fake-v1", fail_after: int | None = None) -> None:
        self.identity = identity
        self.fail_after = fail_after
        self.seen: list[str] = []

    def encode(self, texts):
        if self.fail_after is not None and len(self.seen) >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.seen.extend(texts)
        seeds = [
            int.from_bytes(hashlib.sha256((self.identity + t).encode()).digest()[:4], "little") for t in texts
        ]
        return np.stack([np.random.default_rng(s).standard_normal(self.dim) for s in seeds]).astype(
            np.float32
        )


def test_second_run_encodes_nothing_and_returns_identical_arrays(tmp_path):
    first_encoder = FakeEncoder()
    first = EmbeddingCache(tmp_path)
    out1 = first.encode(first_encoder, TITLES)
    assert (first.hits, first.misses) == (0, len(TITLES))
    np.testing.assert_array_equal(out1, FakeEncoder().encode(TITLES))

    again = FakeEncoder()
    second = EmbeddingCache(tmp_path)  # a new process: reads the store from disk
    out2 = second.encode(again, TITLES)
    assert (second.hits, second.misses) == (len(TITLES), 0) and again.seen == []
    np.testing.assert_array_equal(out2, out1)
    assert out2.dtype == np.float32 and out2.flags["C_CONTIGUOUS"]


def test_changed_text_recomputes_exactly_that_text(tmp_path):
    EmbeddingCache(tmp_path).encode(FakeEncoder(), TITLES)
    changed = list(TITLES)
    changed[3] = "Waiting to Exhale (1995). Genres: Comedy, Drama, Romance"
    encoder, cache = FakeEncoder(), EmbeddingCache(tmp_path)
    out = cache.encode(encoder, changed)
    assert (cache.hits, cache.misses) == (len(TITLES) - 1, 1) and encoder.seen == [changed[3]]
    np.testing.assert_array_equal(out, FakeEncoder().encode(changed))


def test_identity_or_template_change_invalidates(tmp_path):
    EmbeddingCache(tmp_path).encode(FakeEncoder("fake-v1"), TITLES, template="{title}")
    for encoder, template in [
        (FakeEncoder("fake-v2"), "{title}"),
        (FakeEncoder("fake-v1"), "{title}[. {genres}]"),
    ]:
        cache = EmbeddingCache(tmp_path)
        cache.encode(encoder, TITLES, template=template)
        assert cache.misses == len(TITLES) and encoder.seen == TITLES
    cache = EmbeddingCache(tmp_path)
    cache.encode(FakeEncoder("fake-v1"), TITLES, template="{title}")
    assert cache.misses == 0  # the original shard is untouched
    assert len(list(tmp_path.iterdir())) == 3


def test_duplicates_are_encoded_once_and_counted_once(tmp_path):
    encoder, cache = FakeEncoder(), EmbeddingCache(tmp_path)
    texts = [TITLES[0], TITLES[1], TITLES[0], TITLES[0]]
    out = cache.encode(encoder, texts)
    assert encoder.seen == TITLES[:2] and (cache.hits, cache.misses) == (0, 2)
    np.testing.assert_array_equal(out[0], out[2])
    cache.encode(encoder, texts)
    assert (cache.hits, cache.misses) == (2, 2)


def test_interrupted_run_keeps_every_finished_part(tmp_path):
    cache = EmbeddingCache(tmp_path, flush_every=2)
    with pytest.raises(KeyboardInterrupt):
        cache.encode(FakeEncoder(fail_after=4), TITLES)  # two parts of 2 done, then interrupted
    shard = next(tmp_path.iterdir())
    assert len(list(shard.glob("part-*.npz"))) == 2
    assert not list(shard.glob(".tmp-*"))  # no half-written file left behind
    encoder, resumed = FakeEncoder(), EmbeddingCache(tmp_path, flush_every=2)
    out = resumed.encode(encoder, TITLES)
    assert resumed.misses == 3 and encoder.seen == TITLES[4:]
    np.testing.assert_array_equal(out, FakeEncoder().encode(TITLES))


def test_compact_merges_parts_without_changing_answers(tmp_path):
    cache = EmbeddingCache(tmp_path, flush_every=2)
    before = cache.encode(FakeEncoder(), TITLES)
    assert cache.compact("fake-v1") == 4
    assert len(list(next(tmp_path.iterdir()).glob("part-*.npz"))) == 1
    for reader in (cache, EmbeddingCache(tmp_path)):
        encoder = FakeEncoder()
        np.testing.assert_array_equal(reader.encode(encoder, TITLES), before)
        assert encoder.seen == []


def test_bad_encoder_output_is_not_stored(tmp_path):
    class Broken(FakeEncoder):
        def encode(self, texts):
            return np.full((len(texts), 8), np.nan, dtype=np.float32)

    with pytest.raises(ValueError, match="non-finite"):
        EmbeddingCache(tmp_path).encode(Broken(), TITLES)
    assert not list(tmp_path.rglob("part-*.npz"))


def test_default_root_follows_distillrec_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILLREC_CACHE_DIR", str(tmp_path))
    cache = EmbeddingCache()
    cache.encode(FakeEncoder(), TITLES[:1])
    assert cache.folder == tmp_path / "embeddings" and list((tmp_path / "embeddings").iterdir())


def test_cached_equals_live_minilm_and_needs_no_model_load(tmp_path):
    live_encoder = TextEncoder(batch_size=4, progress=False)
    live = live_encoder.encode(TITLES)
    cache = EmbeddingCache(tmp_path)
    first = cache.encode(live_encoder, TITLES, template="{title}[. Genres: {genres}]")
    np.testing.assert_allclose(first, live, atol=1e-6)

    fresh = TextEncoder(batch_size=4, progress=False)
    again = EmbeddingCache(tmp_path)
    second = again.encode(fresh, TITLES, template="{title}[. Genres: {genres}]")
    assert again.misses == 0 and getattr(fresh, "model_", None) is None  # served without loading the weights
    np.testing.assert_array_equal(second, first)
