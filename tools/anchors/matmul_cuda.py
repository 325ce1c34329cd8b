"""PyTorch anchor for the cuda executor's linear op, run on the GPU machine in the same call.

torch.matmul(x, w.T) in f16 (a Linear layer's product) at the Llama-7B shapes of
packages/cuda-volta/bench/exec.mjs, timed the same way: `reps` products enqueued back to back,
host wall clock to a synchronize, median of 3 rounds, random data; and again captured as one CUDA
graph of 5-20 products (the GPU's time per product, as a step graph runs it).
Usage: python3 tools/anchors/matmul_cuda.py OUT.json
"""
import json
import statistics
import sys
import time

import torch


def per_op_ms(fn, reps):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    rounds = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
        rounds.append((time.perf_counter() - t0) * 1e3 / reps)
    return statistics.median(rounds)


def graph_per_op_ms(fn, reps, per_graph):
    """`per_graph` products captured as one CUDA graph, replayed back to back: GPU time per product."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(per_graph):
            fn()
    return per_op_ms(graph.replay, max(1, reps // per_graph)) / per_graph


def main():
    rows = []
    for (n, k) in [(4096, 4096), (11008, 4096), (4096, 11008)]:
        w = torch.rand(n, k, device="cuda", dtype=torch.float16) - 0.5
        for m in [1, 2, 4, 8, 16, 64, 4096]:
            x = torch.rand(m, k, device="cuda", dtype=torch.float16) - 0.5
            reps = 20 if m == 4096 else 200
            ms = per_op_ms(lambda: torch.matmul(x, w.T), reps)
            graph_ms = graph_per_op_ms(lambda: torch.matmul(x, w.T), reps, 5 if m == 4096 else 20)
            rows.append({"m": m, "n": n, "k": k, "dtype": "f16", "ms": ms, "tflops": 2 * m * n * k / ms / 1e9,
                         "graphMs": graph_ms})
            print(f"torch.matmul f16 M={m} N={n} K={k}: {ms:.4f} ms, {rows[-1]['tflops']:.1f} TFLOP/s; "
                  f"in a CUDA graph {graph_ms:.4f} ms")
    with open(sys.argv[1], "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, f, indent=2)


main()
