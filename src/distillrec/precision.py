"""Whether bfloat16 is worth using here: one answer for training, the text encoder and the LLM scorer.

On a CPU, torch's bfloat16 autocast runs everywhere, but without native bfloat16 instructions (x86 AVX512-BF16
or AMX-BF16, ARM BF16) oneDNN emulates it and it is slower than float32: encoding item texts with MiniLM ran
7x slower under emulated bf16 than in float32 on an AMD EPYC without them (55 against 7 texts/s, one thread;
a one-off measurement on 300 beauty titles, no committed benchmark).
So every bf16 switch in distillrec falls back to float32, with a warning that says why: training through
`cpu_bf16_supported` (`train.loop`, which imports it by name: patch it there in tests), the text encoder and the
LLM scorer through `bf16_unsupported_reason` (which calls this module's `cpu_bf16_supported`).
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
        x = torch.ones(2, 4, device=device)
        with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16):
            cast = torch.nn.functional.linear(x, x)  # float32 weights, cast by autocast (the text encoder)
            native = torch.nn.functional.linear(
                x.bfloat16(), x.bfloat16()
            )  # bfloat16 weights (the LLM scorer)
    except (RuntimeError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if cast.dtype != torch.bfloat16 or native.dtype != torch.bfloat16:
        return f"bfloat16 autocast produced {cast.dtype} and {native.dtype}"
    return None
