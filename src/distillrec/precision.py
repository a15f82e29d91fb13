"""Whether bfloat16 is worth using here: one answer for training, the text encoder and the LLM scorer.

On a CPU, torch's bfloat16 autocast runs everywhere, but without native bfloat16 instructions (x86 AVX512-BF16
or AMX-BF16, ARM BF16) oneDNN emulates it and it is slower than float32: encoding item texts with MiniLM ran
7x slower under emulated bf16 than in float32 on an AMD EPYC without them (55 against 7 texts/s, one thread).
So every bf16 switch in distillrec asks `bf16_unsupported_reason` first and falls back to float32, with a
warning that says why, where the answer is not None.
"""

from __future__ import annotations

__all__ = ["bf16_unsupported_reason", "cpu_bf16_supported"]

NO_NATIVE_BF16 = "this CPU has no native bfloat16 (AVX512-BF16 / AMX / ARM BF16)"


def cpu_bf16_supported() -> bool:
    """True when the CPU computes bfloat16 natively (x86 AVX512-BF16 or AMX-BF16; ARM BF16).

    Without these instructions, oneDNN emulates bfloat16 and autocast is slower than float32.
    """
    import torch

    get_capabilities = getattr(torch.cpu, "get_capabilities", None)  # public since torch 2.7 or so
    if get_capabilities is not None:
        caps = get_capabilities()
        return bool(
            caps.get("avx512_bf16") or caps.get("amx_bf16") or caps.get("bf16") or caps.get("sve_bf16")
        )
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # older torch: private helpers
    return bool(probe is not None and probe())


def bf16_unsupported_reason(device: str) -> str | None:
    """None when bfloat16 autocast on `device` works and is native, else why not (a tiny matmul is tried)."""
    import torch

    device_type = torch.device(device).type
    if not torch.amp.is_autocast_available(device_type):
        return f"torch has no autocast for device type {device_type!r}"
    if device_type == "cpu" and not cpu_bf16_supported():
        return f"{NO_NATIVE_BF16}; emulated bfloat16 is slower than float32"
    try:
        x = torch.ones(2, 4, dtype=torch.bfloat16, device=device)
        with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16):
            out = torch.nn.functional.linear(x, x)
    except (RuntimeError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if out.dtype != torch.bfloat16:
        return f"a bfloat16 matmul produced {out.dtype}"
    return None
