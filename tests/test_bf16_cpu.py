"""bfloat16 on a CPU without bfloat16 instructions is emulated (8.7x slower a cWGAN-GP step
here): ``dtype_policy`` says so once the policy is asked for, and only then."""

from __future__ import annotations

import warnings

import pytest

from mrigan_tf.models import mixed_precision
from mrigan_tf.models.mixed_precision import cpu_has_bf16, dtype_policy

AVX2_ONLY = "processor : 0\nflags : fpu sse2 avx avx2 fma avx512f\n"
WITH_BF16 = "processor : 0\nflags : fpu avx2 avx512f avx512_bf16\n"
WITH_AMX = "processor : 0\nflags : fpu avx2 amx_bf16 amx_tile\n"


def test_cpu_has_bf16_reads_the_flags():
    assert not cpu_has_bf16(AVX2_ONLY)
    assert cpu_has_bf16(WITH_BF16) and cpu_has_bf16(WITH_AMX)
    # A flag is a whole word: avx512_bf16x or xamx_bf16 are not it.
    assert not cpu_has_bf16("flags : avx512_bf16x xamx_bf16\n")


@pytest.mark.parametrize("cpuinfo, gpu, warned", [(AVX2_ONLY, False, True),
                                                  (WITH_BF16, False, False),
                                                  (AVX2_ONLY, True, False)])
def test_bfloat16_warns_only_on_a_cpu_without_it(monkeypatch, cpuinfo, gpu, warned):
    monkeypatch.setattr(mixed_precision, "cpu_has_bf16", lambda: cpu_has_bf16(cpuinfo))
    monkeypatch.setattr(mixed_precision, "accelerator_visible", lambda: gpu)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with dtype_policy("mixed_bfloat16"):
            pass
        with dtype_policy("float32"), dtype_policy("mixed_float16"):
            pass
    messages = [str(w.message) for w in caught if "bfloat16 instructions" in str(w.message)]
    assert len(messages) == (1 if warned else 0)
    if warned:
        assert "train in float32" in messages[0]
