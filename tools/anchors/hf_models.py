"""The runtime's external oracle, run on the GPU machine: transformers builds random-weight models
from a config (no download) for each architecture variant, saves each as a Hugging Face directory
(config.json and safetensors, as transformers writes them), and writes its float32 logits for
fixed tokens next to it. packages/runtime/bench/hf-check.mjs then loads the same directories.
Usage: python3 tools/anchors/hf_models.py OUT_DIR
"""
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config

COMMON = dict(vocab_size=1000, hidden_size=256, intermediate_size=688, num_hidden_layers=3,
              num_attention_heads=4, max_position_embeddings=4096, rms_norm_eps=1e-5)

VARIANTS = {
    # GQA 4/2, head dim 64, llama3 rope, untied
    "llama3": LlamaConfig(**COMMON, num_key_value_heads=2, rope_theta=500000.0,
                          rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 256},
                          tie_word_embeddings=False),
    # MHA, head_dim 128 (not hidden / heads), tied embeddings
    "llama-hd128-tied": LlamaConfig(**COMMON, num_key_value_heads=4, head_dim=128, tie_word_embeddings=True),
    # q/k/v bias, tied
    "qwen2": Qwen2Config(**COMMON, num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1000000.0),
    # sliding window shorter than the prompt
    "mistral": MistralConfig(**COMMON, num_key_value_heads=2, sliding_window=24, tie_word_embeddings=False),
}


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    tokens = torch.randint(0, COMMON["vocab_size"], (1, 57))
    index = {"transformers": transformers.__version__, "torch": torch.__version__, "tokens": tokens[0].tolist(),
             "variants": {}}
    for name, config in VARIANTS.items():
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32).eval()
        # Random init is small; scale so attention is far from uniform (positions matter).
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "q_proj.weight" in n or "k_proj.weight" in n:
                    p.mul_(4.0)
        path = os.path.join(out, name)
        model.save_pretrained(path, safe_serialization=True)
        with torch.no_grad():
            logits = model.to("cuda")(tokens.to("cuda")).logits[0].float().cpu()
        greedy = model.generate(tokens.to("cuda"), max_new_tokens=32, do_sample=False)[0, tokens.shape[1]:].tolist()
        torch.save(logits, os.path.join(path, "logits.pt"))
        with open(os.path.join(path, "logits.json"), "w") as f:
            json.dump({"shape": list(logits.shape), "logits": logits.flatten().tolist(), "greedy": greedy}, f)
        index["variants"][name] = path
        print(f"{name}: saved, logits {list(logits.shape)}, greedy {greedy[:8]}...")
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)


main()
