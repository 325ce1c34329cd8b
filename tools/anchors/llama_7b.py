"""A Llama-2-7B-shaped (or Llama-3-8B-shaped) model with random fp16 weights for the runtime's
speed check on the GPU machine (no download): transformers builds it from a config on the GPU, saves
it as a Hugging Face directory, and times its own greedy `generate` as an anchor in the same call.
Positions go to 40960 so that the 32K-context cases fit (the weights' shapes do not change).
Usage: python3 tools/anchors/llama_7b.py OUT_DIR PROMPT_LEN NEW_TOKENS ANCHOR.json [7b|8b]
"""
import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM, LlamaConfig


SHAPES = {
    "7b": dict(vocab_size=32000, intermediate_size=11008, num_key_value_heads=32, rope_theta=10000.0),
    "8b": dict(vocab_size=128256, intermediate_size=14336, num_key_value_heads=8, rope_theta=500000.0),
}


def main():
    out, prompt_len, new_tokens, anchor_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    shape = sys.argv[5] if len(sys.argv) > 5 else "7b"
    config = LlamaConfig(**SHAPES[shape], hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                         max_position_embeddings=40960, rms_norm_eps=1e-5, tie_word_embeddings=False)
    t0 = time.perf_counter()
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float16).eval()
    print(f"built in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    model.save_pretrained(out, safe_serialization=True)
    print(f"saved in {time.perf_counter() - t0:.1f} s", flush=True)
    tokens = torch.randint(0, config.vocab_size, (1, prompt_len), device="cuda")

    def timed(n):
        torch.cuda.synchronize()
        t = time.perf_counter()
        model.generate(tokens, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        torch.cuda.synchronize()
        return time.perf_counter() - t

    timed(2)
    first, full = timed(1), timed(new_tokens + 1)
    rate = new_tokens / (full - first)
    print(f"transformers generate: prefill+1 {first * 1e3:.1f} ms, decode {rate:.1f} tok/s", flush=True)
    with open(anchor_path, "w") as f:
        json.dump({"anchor": "transformers generate (greedy, dynamic cache)", "promptTokens": prompt_len,
                   "firstTokenMs": first * 1e3, "decodeTokensPerS": rate}, f)


main()
