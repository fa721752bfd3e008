#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper model.bin into a whisper.cpp ggml model file.

    convert_ct2_ggml.py MODEL.BIN ASSETS_DIR OUT.bin [--vocab FILE] [--q8_0] [--list]

MODEL.BIN   a CTranslate2 Whisper model (binary format version 6, spec
            "WhisperSpec"), float16 or float32 weights (as made by
            ct2-transformers-converter / faster-whisper; int8 is not supported).
ASSETS_DIR  a folder with openai-whisper's assets: mel_filters.npz and
            multilingual.tiktoken / gpt2.tiktoken (whisper/assets/ in the
            openai-whisper sdist).
OUT.bin     the ggml file to write (written to OUT.bin.tmp, then renamed).

The output layout is the one whisper.cpp's models/convert-pt-to-ggml.py writes
(legacy ggml, magic 0x67676d6c, f16 weights; 1-D tensors, conv biases and the
positional embeddings in f32), tensors in the order of the PyTorch state dict.
The conversion is deterministic: the same input gives the same bytes.

--q8_0 writes the 2-D weight matrices (not the conv kernels or the positional
embeddings) as ggml q8_0 instead (blocks of 32 values: an f16 scale and 32
int8), file type 7: about half the size and a faster matrix multiply on CPUs,
but transcripts that differ (models/README.md has what that did to Danish).

CTranslate2 model.bin (version 6), all integers little-endian:
    u32 version, str spec_name, u32 spec_revision, u32 n_variables,
    n_variables x { str name, u8 rank, u32 dims[rank], u8 dtype, u32 nbytes, data },
    u32 n_aliases, n_aliases x { str alias, str target }
    str = u16 length (including the trailing NUL) + bytes
    dtype: 0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16

CTranslate2 fuses the self-attention q/k/v projections into one matrix
(linear_0, 3*d rows) and the cross-attention k/v into one (linear_1, 2*d rows);
they are split here. Whisper has no key bias: CTranslate2 stores a zero one,
which is dropped (a constant key bias does not change softmax anyway).

Only numpy is needed.
"""

import argparse
import base64
import os
import struct
import sys

import numpy as np

GGML_MAGIC = 0x67676D6C
# ggml tensor types and file types (ggml.h).
GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_Q8_0 = 0, 1, 8
GGML_FTYPE_F32, GGML_FTYPE_F16, GGML_FTYPE_Q8_0 = 0, 1, 7
Q8_0_BLOCK = 32

CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
CT2_DTYPE_NAMES = {0: "f32", 1: "i8", 2: "i16", 3: "i32", 4: "f16", 5: "bf16"}


def read_ct2(path):
    """Return (spec, revision, {name: (dims, dtype_code, memoryview)}, aliases)."""
    with open(path, "rb") as f:
        buf = f.read()
    mv = memoryview(buf)
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals[0] if len(vals) == 1 else vals

    def take_str():
        nonlocal pos
        n = take("H")
        s = bytes(buf[pos : pos + n])
        pos += n
        if n == 0 or s[-1] != 0:
            raise ValueError("bad string in CT2 file at offset %d" % pos)
        return s[:-1].decode("utf-8")

    version = take("I")
    if version != 6:
        raise ValueError("unsupported CTranslate2 binary version %d (want 6)" % version)
    spec = take_str()
    revision = take("I")
    n_vars = take("I")
    variables = {}
    for _ in range(n_vars):
        name = take_str()
        rank = take("B")
        dims = [take("I") for _ in range(rank)]
        dtype = take("B")
        nbytes = take("I")
        variables[name] = (dims, dtype, mv[pos : pos + nbytes])
        pos += nbytes
    aliases = {}
    n_alias = take("I")
    for _ in range(n_alias):
        alias = take_str()
        aliases[alias] = take_str()
    if pos != len(buf):
        raise ValueError("trailing %d bytes after CT2 aliases" % (len(buf) - pos))
    return spec, revision, variables, aliases


USED = set()


def as_array(variables, name):
    USED.add(name)
    dims, dtype, data = variables[name]
    if dtype not in (0, 4):
        raise ValueError(
            "variable %s has dtype %s; only f32/f16 models can be converted"
            % (name, CT2_DTYPE_NAMES.get(dtype, dtype))
        )
    arr = np.frombuffer(data, dtype=np.dtype(CT2_DTYPES[dtype]).newbyteorder("<"))
    return arr.reshape(dims) if dims else arr


def scalar(variables, name):
    arr = as_array_any(variables, name)
    return int(arr.reshape(-1)[0])


def as_array_any(variables, name):
    dims, dtype, data = variables[name]
    arr = np.frombuffer(data, dtype=np.dtype(CT2_DTYPES[dtype]).newbyteorder("<"))
    return arr.reshape(dims) if dims else arr


def count_layers(variables, prefix):
    n = 0
    while any(k.startswith("%s/layer_%d/" % (prefix, n)) for k in variables):
        n += 1
    return n


def build_tensor_list(v):
    """Yield (ggml_name, numpy array) in the PyTorch state-dict order."""
    enc_layers = count_layers(v, "encoder")
    dec_layers = count_layers(v, "decoder")

    def lin(prefix, out):
        yield out + ".weight", as_array(v, prefix + "/weight")
        yield out + ".bias", as_array(v, prefix + "/bias")

    def ln(prefix, out):
        yield out + ".weight", as_array(v, prefix + "/gamma")
        yield out + ".bias", as_array(v, prefix + "/beta")

    def self_attn(prefix, out):
        w = as_array(v, prefix + "/linear_0/weight")
        b = as_array(v, prefix + "/linear_0/bias")
        d = w.shape[0] // 3
        if w.shape[0] != 3 * d or b.shape[0] != 3 * d:
            raise ValueError("unexpected fused qkv shape %s in %s" % (w.shape, prefix))
        yield out + ".query.weight", w[:d]
        yield out + ".query.bias", b[:d]
        yield out + ".key.weight", w[d : 2 * d]
        check_zero_key_bias(b[d : 2 * d], prefix)
        yield out + ".value.weight", w[2 * d :]
        yield out + ".value.bias", b[2 * d :]
        yield from lin(prefix + "/linear_1", out + ".out")

    def cross_attn(prefix, out):
        yield from lin(prefix + "/linear_0", out + ".query")
        w = as_array(v, prefix + "/linear_1/weight")
        b = as_array(v, prefix + "/linear_1/bias")
        d = w.shape[0] // 2
        if w.shape[0] != 2 * d or b.shape[0] != 2 * d:
            raise ValueError("unexpected fused kv shape %s in %s" % (w.shape, prefix))
        yield out + ".key.weight", w[:d]
        check_zero_key_bias(b[:d], prefix)
        yield out + ".value.weight", w[d:]
        yield out + ".value.bias", b[d:]
        yield from lin(prefix + "/linear_2", out + ".out")

    def mlp(prefix, out):
        yield from lin(prefix + "/linear_0", out + ".mlp.0")
        yield from lin(prefix + "/linear_1", out + ".mlp.2")
        yield from ln(prefix + "/layer_norm", out + ".mlp_ln")

    # encoder
    yield "encoder.positional_embedding", as_array(v, "encoder/position_encodings/encodings")
    yield from lin("encoder/conv1", "encoder.conv1")
    yield from lin("encoder/conv2", "encoder.conv2")
    for i in range(enc_layers):
        p, o = "encoder/layer_%d" % i, "encoder.blocks.%d" % i
        yield from self_attn(p + "/self_attention", o + ".attn")
        yield from ln(p + "/self_attention/layer_norm", o + ".attn_ln")
        yield from mlp(p + "/ffn", o)
    yield from ln("encoder/layer_norm", "encoder.ln_post")

    # decoder
    yield "decoder.positional_embedding", as_array(v, "decoder/position_encodings/encodings")
    yield "decoder.token_embedding.weight", as_array(v, "decoder/embeddings/weight")
    for i in range(dec_layers):
        p, o = "decoder/layer_%d" % i, "decoder.blocks.%d" % i
        yield from self_attn(p + "/self_attention", o + ".attn")
        yield from ln(p + "/self_attention/layer_norm", o + ".attn_ln")
        yield from cross_attn(p + "/attention", o + ".cross_attn")
        yield from ln(p + "/attention/layer_norm", o + ".cross_attn_ln")
        yield from mlp(p + "/ffn", o)
    yield from ln("decoder/layer_norm", "decoder.ln")


def check_zero_key_bias(b, where):
    if np.any(b.astype(np.float32) != 0):
        # Softmax is invariant to a per-query constant, so a key bias has no
        # effect on attention; whisper.cpp has no slot for it. Say so, go on.
        print("note: non-zero key bias in %s dropped (no effect on attention)" % where,
              file=sys.stderr)


# Variables of the CT2 spec that carry no weights whisper.cpp needs.
IGNORED = {
    "decoder/activation", "decoder/alibi", "decoder/alignment_heads",
    "decoder/alignment_layer", "decoder/num_heads", "decoder/pre_norm",
    "decoder/scale_embeddings", "decoder/start_from_zero_embedding",
    "encoder/num_heads",
}


def q8_0_blocks(data):
    """As ggml's quantize_row_q8_0_ref computes it: per block of 32, d = max|x| / 127
    (f32, stored f16) and q = round-half-away(x * (1/d)). (Not compared byte for byte
    with whisper.cpp's `quantize` tool, which is not built here.)"""
    x = np.asarray(data, dtype=np.float32).reshape(-1, Q8_0_BLOCK)
    d = np.abs(x).max(axis=1) / np.float32(127)
    inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)
    v = x * inv[:, None]
    q = (np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))).astype(np.int8)
    blocks = np.zeros(x.shape[0], dtype=[("d", "<f2"), ("qs", "i1", Q8_0_BLOCK)])
    blocks["d"] = d.astype(np.float16)
    blocks["qs"] = q
    return blocks.tobytes()


def load_vocab(path):
    tokens = []
    with open(path, "rb") as f:
        for line in f.read().splitlines():
            if not line:
                continue
            tok, rank = line.split()
            tokens.append((base64.b64decode(tok), int(rank)))
    for i, (_, rank) in enumerate(tokens):
        if rank != i:
            raise ValueError("%s: token ranks are not 0..n-1 in order" % path)
    return [t for t, _ in tokens]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("assets")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--vocab", help="tiktoken file (default: by n_vocab, multilingual or gpt2)")
    ap.add_argument("--f32", action="store_true", help="write all tensors as f32")
    ap.add_argument("--q8_0", action="store_true", help="write 2-D weight matrices as q8_0")
    ap.add_argument("--list", action="store_true", help="print the CT2 variables and exit")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()

    spec, revision, v, aliases = read_ct2(args.model)
    if args.list:
        print("spec %s revision %d, %d variables" % (spec, revision, len(v)))
        for name, (dims, dtype, data) in v.items():
            print("%-60s %-16s %-4s %d" % (name, dims, CT2_DTYPE_NAMES.get(dtype, dtype), len(data)))
        for a, t in aliases.items():
            print("alias %s -> %s" % (a, t))
        return 0
    if args.out is None:
        ap.error("OUT is required")
    if args.f32 and args.q8_0:
        ap.error("--f32 and --q8_0 exclude each other")
    if spec != "WhisperSpec":
        raise SystemExit("not a Whisper CT2 model: spec %r" % spec)

    n_vocab, n_text_state = v["decoder/embeddings/weight"][0]
    n_audio_ctx, n_audio_state = v["encoder/position_encodings/encodings"][0]
    n_text_ctx = v["decoder/position_encodings/encodings"][0][0]
    n_mels = v["encoder/conv1/weight"][0][1]
    hp = [
        ("n_vocab", n_vocab),
        ("n_audio_ctx", n_audio_ctx),
        ("n_audio_state", n_audio_state),
        ("n_audio_head", scalar(v, "encoder/num_heads")),
        ("n_audio_layer", count_layers(v, "encoder")),
        ("n_text_ctx", n_text_ctx),
        ("n_text_state", n_text_state),
        ("n_text_head", scalar(v, "decoder/num_heads")),
        ("n_text_layer", count_layers(v, "decoder")),
        ("n_mels", n_mels),
        ("ftype", GGML_FTYPE_F32 if args.f32 else GGML_FTYPE_Q8_0 if args.q8_0 else GGML_FTYPE_F16),
    ]
    if not args.quiet:
        print("hparams: " + ", ".join("%s=%d" % kv for kv in hp))

    with np.load(os.path.join(args.assets, "mel_filters.npz")) as f:
        filters = np.ascontiguousarray(f["mel_%d" % n_mels], dtype="<f4")

    multilingual = n_vocab >= 51865
    vocab_path = args.vocab or os.path.join(
        args.assets, "multilingual.tiktoken" if multilingual else "gpt2.tiktoken")
    vocab = load_vocab(vocab_path)
    if not args.quiet:
        print("vocab: %s (%d tokens), mel filters %s" % (os.path.basename(vocab_path), len(vocab), filters.shape))

    tmp = args.out + ".tmp"
    n_tensors = 0
    with open(tmp, "wb") as out:
        out.write(struct.pack("<i", GGML_MAGIC))
        for _, val in hp:
            out.write(struct.pack("<i", int(val)))
        out.write(struct.pack("<ii", filters.shape[0], filters.shape[1]))
        out.write(filters.tobytes())
        out.write(struct.pack("<i", len(vocab)))
        for tok in vocab:
            out.write(struct.pack("<i", len(tok)))
            out.write(tok)

        for name, data in build_tensor_list(v):
            data = np.squeeze(data)
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                data = data.reshape(data.shape[0], 1)
            n_dims = data.ndim
            f32 = (args.f32 or n_dims < 2 or name in (
                "encoder.conv1.bias", "encoder.conv2.bias",
                "encoder.positional_embedding", "decoder.positional_embedding"))
            data = np.ascontiguousarray(data, dtype="<f4" if f32 else "<f2")
            q8 = (args.q8_0 and not f32 and n_dims == 2 and name.endswith(".weight")
                  and data.shape[-1] % Q8_0_BLOCK == 0)
            ttype = GGML_TYPE_F32 if f32 else GGML_TYPE_Q8_0 if q8 else GGML_TYPE_F16
            nb = name.encode("utf-8")
            out.write(struct.pack("<iii", n_dims, len(nb), ttype))
            for i in range(n_dims):
                out.write(struct.pack("<i", data.shape[n_dims - 1 - i]))
            out.write(nb)
            out.write(q8_0_blocks(data) if q8 else data.tobytes())
            n_tensors += 1

    # Every CT2 weight must have been used (guards against a spec change).
    unused = sorted(set(v) - USED - IGNORED)
    if unused:
        os.unlink(tmp)
        raise SystemExit("CT2 variables not converted: %s" % ", ".join(unused))
    os.replace(tmp, args.out)
    if not args.quiet:
        print("wrote %s: %d tensors, %d bytes" % (args.out, n_tensors, os.path.getsize(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
