"""The runtime's speed anchor on the GPU machine: a PyTorch Llama (random fp16 weights, no
download) with a static KV cache held in module buffers. Prefill runs eagerly (SDPA, causal);
decode is one step compiled by torch.compile(mode="reduce-overhead"), so it replays as a CUDA
graph; the profiler counts graph launches to show that it does. The same-run read bandwidth (a
large fp16 sum) gives each decode case's read limit: the bytes a step must read (weights plus the
keys and values it attends to) over that bandwidth.
Usage: python3 tools/anchors/llama_static.py SHAPE OUT.json CASES
  SHAPE: 7b (Llama-2-7B: MHA, vocab 32000) or 8b (Llama-3-8B: GQA 32/8, vocab 128256)
  CASES: comma-separated, e.g. prefill:4096,prefill:16384,decode:1:1024,decode:64:2048,decode:1:32768
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = {
    "7b": dict(vocab=32000, hidden=4096, inter=11008, layers=32, heads=32, kv_heads=32, theta=10000.0),
    "8b": dict(vocab=128256, hidden=4096, inter=14336, layers=32, heads=32, kv_heads=8, theta=500000.0),
}


class KVCache(torch.nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.register_buffer("k", torch.zeros(shape, dtype=torch.float16), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=torch.float16), persistent=False)


class Llama(torch.nn.Module):
    def __init__(self, s, batch, max_len):
        super().__init__()
        d = s["hidden"] // s["heads"]
        self.s, self.d = s, d
        p = lambda *shape: torch.nn.Parameter(torch.randn(*shape, dtype=torch.float16) * 0.02, requires_grad=False)
        one = lambda n: torch.nn.Parameter(torch.ones(n, dtype=torch.float16), requires_grad=False)
        self.embed = p(s["vocab"], s["hidden"])
        self.qkv = torch.nn.ParameterList([p((s["heads"] + 2 * s["kv_heads"]) * d, s["hidden"]) for _ in range(s["layers"])])
        self.o = torch.nn.ParameterList([p(s["hidden"], s["heads"] * d) for _ in range(s["layers"])])
        self.gate_up = torch.nn.ParameterList([p(2 * s["inter"], s["hidden"]) for _ in range(s["layers"])])
        self.down = torch.nn.ParameterList([p(s["hidden"], s["inter"]) for _ in range(s["layers"])])
        self.n1 = torch.nn.ParameterList([one(s["hidden"]) for _ in range(s["layers"])])
        self.n2 = torch.nn.ParameterList([one(s["hidden"]) for _ in range(s["layers"])])
        self.norm = one(s["hidden"])
        self.head = p(s["vocab"], s["hidden"])
        # one buffer per layer (a view of one big buffer would be copied whole by each in-place update)
        self.caches = torch.nn.ModuleList([KVCache((batch, s["kv_heads"], max_len, d)) for _ in range(s["layers"])])
        self.gqa = s["kv_heads"] != s["heads"]
        inv = 1.0 / (s["theta"] ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        ang = torch.outer(torch.arange(max_len, dtype=torch.float32), inv)
        self.register_buffer("cos", ang.cos().half(), persistent=False)
        self.register_buffer("sin", ang.sin().half(), persistent=False)
        self.register_buffer("slots", torch.arange(max_len), persistent=False)

    def rope(self, x, pos):  # x [B, heads, S, d], half-split pairs
        cos, sin = self.cos[pos][None, None], self.sin[pos][None, None]
        a, b = x.chunk(2, dim=-1)
        return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)

    def forward(self, tokens, pos):
        """tokens [B, S] at positions pos [S] (the same for every row); returns the last token's logits."""
        s, d = self.s, self.d
        B, S = tokens.shape
        x = F.embedding(tokens, self.embed)
        prefill = S > 1
        mask = None if prefill else (self.slots <= pos[-1])[None, None, None, :]
        for l in range(s["layers"]):
            h = F.rms_norm(x, (s["hidden"],), self.n1[l], 1e-5)
            qkv = (h @ self.qkv[l].T).view(B, S, s["heads"] + 2 * s["kv_heads"], d).transpose(1, 2)
            q, k, v = qkv.split([s["heads"], s["kv_heads"], s["kv_heads"]], dim=1)
            q, k = self.rope(q, pos), self.rope(k, pos)
            cache = self.caches[l]
            cache.k[:, :, pos] = k
            cache.v[:, :, pos] = v
            if prefill:  # a fresh prompt attends to itself
                a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.gqa)
            else:
                a = F.scaled_dot_product_attention(q, cache.k, cache.v, attn_mask=mask, enable_gqa=self.gqa)
            x = x + a.transpose(1, 2).reshape(B, S, -1) @ self.o[l].T
            h = F.rms_norm(x, (s["hidden"],), self.n2[l], 1e-5)
            g, u = (h @ self.gate_up[l].T).chunk(2, dim=-1)
            x = x + (F.silu(g) * u) @ self.down[l].T
        return F.rms_norm(x[:, -1], (s["hidden"],), self.norm, 1e-5) @ self.head.T


def timed(fn):
    torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t


def read_bandwidth():
    x = torch.randn(2 * 1024**3, dtype=torch.float16, device="cuda")  # 4 GiB
    x.sum()
    times = [timed(lambda: x.sum()) for _ in range(10)]
    del x
    return 4 * 1024**3 / statistics.median(times) / 1e9


def kernel_table(prof, steps, top=40):
    """The GPU kernels a profiled run launched, per step: name, calls and microseconds, busiest first."""
    table = {}
    for e in prof.events():
        if e.device_type != torch.autograd.DeviceType.CUDA:
            continue
        calls, us = table.get(e.name, (0, 0.0))
        table[e.name] = (calls + 1, us + e.device_time)
    rows = sorted(table.items(), key=lambda kv: -kv[1][1])[:top]
    return [{"kernel": name[:160], "callsPerStep": calls / steps, "usPerStep": us / steps} for name, (calls, us) in rows]


def weight_bytes(s):
    d = s["hidden"] // s["heads"]
    per_layer = ((s["heads"] + 2 * s["kv_heads"]) * d + s["heads"] * d) * s["hidden"] + 3 * s["inter"] * s["hidden"]
    return 2 * (s["layers"] * per_layer + s["vocab"] * s["hidden"])  # LM head (the embedding row read is negligible)


def kv_bytes_per_token(s):
    return 2 * s["layers"] * s["kv_heads"] * (s["hidden"] // s["heads"]) * 2


def main():
    shape, out, cases = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    s = SHAPES[shape]
    torch.manual_seed(0)
    bw = read_bandwidth()
    print(f"read bandwidth {bw:.0f} GB/s", flush=True)
    results = {"shape": shape, "torch": torch.__version__, "device": torch.cuda.get_device_name(),
               "readGBs": bw, "weightBytes": weight_bytes(s), "kvBytesPerToken": kv_bytes_per_token(s), "cases": []}
    for case in cases:
        kind, *args = case.split(":")
        if kind == "prefill":
            (n,) = map(int, args)
            with torch.device("cuda"):
                model = Llama(s, 1, n).eval()
            tokens = torch.randint(0, s["vocab"], (1, n), device="cuda")
            pos = torch.arange(n, device="cuda")
            with torch.inference_mode():
                model(tokens, pos)
                times = [timed(lambda: model(tokens, pos)) for _ in range(3)]
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                    model(tokens, pos)
                    torch.cuda.synchronize()
            t = statistics.median(times)
            row = {"case": case, "mode": "eager", "tokensPerS": n / t, "ms": t * 1e3, "kernels": kernel_table(prof, 1)}
        else:
            batch, ctx = map(int, args)
            steps = 64
            with torch.device("cuda"):
                model = Llama(s, batch, ctx + steps + 8).eval()
            step = torch.compile(model, mode="reduce-overhead", fullgraph=True)
            tok = torch.randint(0, s["vocab"], (batch, 1), device="cuda")
            with torch.inference_mode():
                t0 = time.perf_counter()
                for i in range(3):  # warm-up: compile, record the graph
                    torch.compiler.cudagraph_mark_step_begin()
                    step(tok, torch.tensor([ctx + i], device="cuda"))
                compile_s = time.perf_counter() - t0
                positions = [torch.tensor([ctx + i], device="cuda") for i in range(steps)]

                def run():
                    nonlocal tok
                    for p in positions:
                        torch.compiler.cudagraph_mark_step_begin()
                        tok = step(tok, p).argmax(-1, keepdim=True)

                times = [timed(run) for _ in range(3)]
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]) as prof:
                    run()
                    torch.cuda.synchronize()
                launches = sum(e.count for e in prof.key_averages() if "GraphLaunch" in e.key)
                kernels = kernel_table(prof, steps)
            t = statistics.median(times) / steps
            step_bytes = weight_bytes(s) + batch * ctx * kv_bytes_per_token(s)
            limit = batch * bw * 1e9 / step_bytes
            row = {"case": case, "mode": "torch.compile reduce-overhead", "tokensPerS": batch / t,
                   "msPerStep": t * 1e3, "readLimitTokensPerS": limit, "ofReadLimit": batch / t / limit,
                   "graphLaunchesPer64Steps": launches, "compileS": compile_s, "kernels": kernels}
        print(json.dumps({k: v for k, v in row.items() if k != "kernels"}), flush=True)
        results["cases"].append(row)
        del model
        torch.cuda.empty_cache()
    with open(out, "w") as f:
        json.dump(results, f, indent=2)


main()
