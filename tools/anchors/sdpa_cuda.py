"""PyTorch anchors for the CUDA backend's benchmarks, run on the GPU machine in the same call.

SDPA with each backend forced (FLASH = FlashAttention-2, EFFICIENT = xformers-style cutlass,
CUDNN) and a naive attention (materialized scores + softmax), on the shapes of
packages/cuda-volta/bench/run.mjs; timed with CUDA events around each call, back to back (msSynced:
waiting after each call, the host dispatch included), medians, random data.
Usage: python3 tools/anchors/sdpa_cuda.py OUT.json [prefill] [decode]
"""
import json
import math
import os
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

DT = {"f16": torch.float16, "bf16": torch.bfloat16}
WARM_MS = float(os.environ.get("FASTATTN_BENCH_WARM_MS", "200"))  # prefill; 0: the old 5 calls
_first_warm = True


def time_ms(fn, warmup=5, iters=20, synced=False, warm_ms=0):
    """Median ms of one call of fn, with an event pair around each call.

    warm_ms > 0: fn first runs for about that long (in place of `warmup` calls), so that the card's
    power cap has settled on its clock for this shape whatever ran before it (the project's
    bench/run.mjs warms its prefill timings the same way). The first warmed timing of the process
    warms ten times as long: the cap's controller overshoots for a second or two after the card
    first reaches it.

    The calls run back to back, as the project's own timings do (`Context::timed`): the host
    enqueues ahead of the GPU, so its dispatch time is not in the figures. synced=True waits for
    each call before the next. Each figure then also holds the host's dispatch of the call, from
    the first event to the kernel's launch (this script's method before 2026-12-02).
    """
    global _first_warm
    if warm_ms > 0:
        probe = time_ms(fn, warmup=1, iters=3)
        warmup = min(50000, math.ceil(warm_ms * (10 if _first_warm else 1) / probe))
        _first_warm = False
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    pairs = []
    for _ in range(iters):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        if synced:
            b.synchronize()
        pairs.append((a, b))
    torch.cuda.synchronize()
    return statistics.median(a.elapsed_time(b) for a, b in pairs)


def naive(q, k, v, causal):
    s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        n = s.shape[-1]
        mask = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
        s = s.masked_fill(mask, float("-inf"))
    return torch.softmax(s.float(), dim=-1).to(q.dtype) @ v


def main():
    out = sys.argv[1]
    which = sys.argv[2:] or ["prefill", "decode"]
    rows = []
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}
    if "prefill" in which:
        for (B, H, S, D) in [
            (16, 32, 1024, 128), (4, 32, 4096, 128), (1, 32, 16384, 128),
            (16, 32, 1024, 64), (4, 32, 4096, 64), (1, 32, 16384, 64),
            (4, 32, 4096, 80), (4, 32, 4096, 96), (4, 16, 4096, 256),
        ]:
            for dt in ["f16", "bf16"]:
                q, k, v = (torch.randn(B, H, S, D, device="cuda", dtype=DT[dt]) for _ in range(3))
                for mask in ["none", "causal"]:
                    causal = mask == "causal"
                    flops = 4 * B * H * S * S * D / (2 if causal else 1)
                    base = dict(kind="prefill", dtype=dt, batch=B, headsQ=H, headsKV=H, seqQ=S, seqK=S, headDim=D, mask=mask)
                    for name, be in [("FLASH", SDPBackend.FLASH_ATTENTION), ("EFFICIENT", SDPBackend.EFFICIENT_ATTENTION), ("CUDNN", SDPBackend.CUDNN_ATTENTION)]:
                        try:
                            with sdpa_kernel(be):
                                call = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # noqa: E731
                                ms = time_ms(call, warm_ms=WARM_MS)
                                synced = time_ms(call, synced=True)
                            rows.append(dict(impl=name, ms=ms, msSynced=synced, tflops=flops / ms / 1e9, **base))
                        except Exception as e:  # a backend that refuses the shape is reported, not fatal
                            rows.append(dict(impl=name, error=str(e)[:200], **base))
                    scores = B * H * S * S * 2
                    if scores * 4 < 40 * 2**30:
                        ms = time_ms(lambda: naive(q, k, v, causal), warmup=2, iters=5)
                        rows.append(dict(impl="naive", ms=ms, tflops=flops / ms / 1e9, **base))
                    print(f"prefill {dt} {B},{H},{S},{D} {mask}: " + ", ".join(f"{r['impl']} {r.get('tflops', float('nan')):.0f}" for r in rows if r.get('kind') == 'prefill' and all(r[x] == base[x] for x in base)), flush=True)
                del q, k, v
                torch.cuda.empty_cache()
    if "decode" in which:
        n = 2**30 // 2
        src = torch.randn(n, device="cuda", dtype=torch.float16)
        dst = torch.empty_like(src)
        ms = time_ms(lambda: dst.copy_(src))
        result["copyGBs"] = 2 * 2**30 / ms / 1e6
        del src, dst
        for B in [1, 16, 64]:
            for S in [4096, 32768, 131072]:
                q = torch.randn(B, 32, 1, 128, device="cuda", dtype=torch.float16)
                k = torch.randn(B, 8, S, 128, device="cuda", dtype=torch.float16)
                v = torch.randn(B, 8, S, 128, device="cuda", dtype=torch.float16)
                kv_bytes = 2 * B * S * 8 * 128 * 2
                base = dict(kind="decode", dtype="f16", batch=B, headsQ=32, headsKV=8, seqQ=1, seqK=S, headDim=128, mask="none")
                for name, be in [("FLASH", SDPBackend.FLASH_ATTENTION), ("CUDNN", SDPBackend.CUDNN_ATTENTION), ("EFFICIENT", SDPBackend.EFFICIENT_ATTENTION)]:
                    try:
                        with sdpa_kernel(be):
                            call = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)  # noqa: E731
                            ms = time_ms(call)
                            synced = time_ms(call, synced=True)
                        rows.append(dict(impl=name, ms=ms, msSynced=synced, gbps=kv_bytes / ms / 1e6, **base))
                    except Exception as e:
                        rows.append(dict(impl=name, error=str(e)[:200], **base))
                print(f"decode B={B} S={S}: " + ", ".join(f"{r['impl']} {r.get('gbps', float('nan')):.0f}" for r in rows if r.get('kind') == 'decode' and r['batch'] == B and r['seqK'] == S), flush=True)
                del q, k, v
                torch.cuda.empty_cache()
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
