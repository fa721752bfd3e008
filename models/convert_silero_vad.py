#!/usr/bin/env python3
"""Convert Silero VAD (16 kHz) into whisper.cpp's ggml VAD format.

    convert_silero_vad.py INPUT OUT.bin [--version 6.2.3]

INPUT is one of the two 16 kHz models in the PyPI wheel `silero-vad` (6.x):
  silero_vad/data/silero_vad.jit   TorchScript archive: the model that
      silero-vad's load_silero_vad() returns, the same weights as its .onnx
      files, and what whisper.cpp's models/convert-silero-vad-to-ggml.py
      converts (whisper.cpp publishes that as ggml-silero-vX.Y.Z.bin).
      Read here without torch: a restricted unpickler that only rebuilds
      float tensors from the archive's storages.
  silero_vad/data/silero_vad_16k.safetensors   the weights for silero's
      tinygrad example. In silero-vad 6.2.3 these are NOT the weights of the
      .jit/.onnx model (only the STFT basis is the same): an other checkpoint.
The input kind is told by its first bytes (zip = TorchScript).

The output has the layout that whisper.cpp's convert-silero-vad-to-ggml.py
writes (same tensor order, types and shapes) and that whisper.cpp's
whisper_vad_init_with_params() loads:

    i32 magic 0x67676d6c
    i32 len + "silero-16k", i32 major, minor, patch
    i32 n_window (512), i32 n_context (64)
    i32 n_encoder_layers (4), then per layer i32 in, out, kernel
    i32 lstm_input, lstm_hidden, final_conv_in, final_conv_out
    tensors: i32 n_dims, i32 name_len, i32 ftype (0 f32, 1 f16),
             i32 ne[n_dims] (ggml order, reversed), name, data

Safetensors is parsed by hand (u64 LE header length, JSON header, raw data),
so only numpy is needed. The conversion is deterministic.
"""

import argparse
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np

GGML_MAGIC = 0x67676D6C

ST_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": None, "F64": "<f8"}

# (safetensors name, whisper.cpp name), in the reference converter's order:
# encoder convs, LSTM, final conv, STFT basis last.
TENSORS = [
    ("conv1.weight", "_model.encoder.0.reparam_conv.weight"),
    ("conv1.bias", "_model.encoder.0.reparam_conv.bias"),
    ("conv2.weight", "_model.encoder.1.reparam_conv.weight"),
    ("conv2.bias", "_model.encoder.1.reparam_conv.bias"),
    ("conv3.weight", "_model.encoder.2.reparam_conv.weight"),
    ("conv3.bias", "_model.encoder.2.reparam_conv.bias"),
    ("conv4.weight", "_model.encoder.3.reparam_conv.weight"),
    ("conv4.bias", "_model.encoder.3.reparam_conv.bias"),
    ("lstm_cell.weight_ih", "_model.decoder.rnn.weight_ih"),
    ("lstm_cell.weight_hh", "_model.decoder.rnn.weight_hh"),
    ("lstm_cell.bias_ih", "_model.decoder.rnn.bias_ih"),
    ("lstm_cell.bias_hh", "_model.decoder.rnn.bias_hh"),
    ("final_conv.weight", "_model.decoder.decoder.2.weight"),
    ("final_conv.bias", "_model.decoder.decoder.2.bias"),
    ("stft_conv.weight", "_model.stft.forward_basis_buffer"),
]

# Shapes whisper.cpp creates (ggml order, ne[0] first) and the type it expects.
EXPECTED = {
    "_model.stft.forward_basis_buffer": ([256, 1, 258], 1),
    "_model.encoder.0.reparam_conv.weight": ([3, 129, 128], 1),
    "_model.encoder.0.reparam_conv.bias": ([128], 0),
    "_model.encoder.1.reparam_conv.weight": ([3, 128, 64], 1),
    "_model.encoder.1.reparam_conv.bias": ([64], 0),
    "_model.encoder.2.reparam_conv.weight": ([3, 64, 64], 1),
    "_model.encoder.2.reparam_conv.bias": ([64], 0),
    "_model.encoder.3.reparam_conv.weight": ([3, 64, 128], 1),
    "_model.encoder.3.reparam_conv.bias": ([128], 0),
    "_model.decoder.rnn.weight_ih": ([128, 512], 0),
    "_model.decoder.rnn.weight_hh": ([128, 512], 0),
    "_model.decoder.rnn.bias_ih": ([512], 0),
    "_model.decoder.rnn.bias_hh": ([512], 0),
    "_model.decoder.decoder.2.weight": ([128, 1], 1),
    "_model.decoder.decoder.2.bias": ([1], 0),
}


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack_from("<Q", buf, 0)
    header = json.loads(buf[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = ST_DTYPES.get(info["dtype"])
        if dt is None:
            raise SystemExit("unsupported dtype %s for %s" % (info["dtype"], name))
        start, end = info["data_offsets"]
        arr = np.frombuffer(buf, dtype=dt, count=(end - start) // np.dtype(dt).itemsize,
                            offset=base + start)
        out[name] = arr.reshape(info["shape"])
    return out


# whisper.cpp name -> safetensors name
ST_NAME = {dst: src for src, dst in TENSORS}


class _TorchObj:
    """Stand-in for any TorchScript class found in data.pkl."""

    def __init__(self, *args, **kwargs):
        self.state = None

    def __setstate__(self, state):
        self.state = state


_STORAGE_DTYPES = {"FloatStorage": "<f4", "HalfStorage": "<f2", "DoubleStorage": "<f8",
                   "LongStorage": "<i8", "IntStorage": "<i4", "BoolStorage": "?"}


class _StorageType:
    def __init__(self, name):
        self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor(storage, offset, size, stride, *_):
    size, stride = tuple(size), tuple(stride)
    if not size:
        return storage[offset : offset + 1].reshape(())
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=[s * item for s in stride])
    return np.array(view)


def read_torchscript(path):
    """Tensors of a TorchScript archive, named by attribute path (no torch)."""
    zf = zipfile.ZipFile(path)
    pkls = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        raise SystemExit("%s: not a TorchScript archive" % path)
    root = pkls[0].split("/")[0]

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return _rebuild_tensor
            if module == "torch._utils" and name == "_rebuild_parameter":
                return lambda data, requires_grad, hooks: data
            if module == "torch" and name in _STORAGE_DTYPES:
                return _StorageType(name)
            if module == "torch.jit._pickle" and name in (
                    "build_intlist", "build_doublelist", "build_boollist", "build_tensorlist"):
                return list
            if module == "collections" and name == "OrderedDict":
                return collections.OrderedDict
            if module.startswith("__torch__"):
                return type(name, (_TorchObj,), {})
            raise pickle.UnpicklingError("refusing %s.%s" % (module, name))

        def persistent_load(self, pid):
            _, storage_type, key, _, numel = pid
            data = zf.read("%s/data/%s" % (root, key))
            return np.frombuffer(data, dtype=storage_type.dtype, count=numel)

    obj = Unpickler(io.BytesIO(zf.read(pkls[0]))).load()
    out = {}

    def walk(x, prefix):
        if isinstance(x, np.ndarray):
            out[prefix] = x
        elif isinstance(x, _TorchObj):
            walk(x.state, prefix)
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, "%s.%s" % (prefix, k) if prefix else str(k))
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(v, "%s[%d]" % (prefix, i))

    walk(obj, "")
    # Keep the 16 kHz model (`_model.*`), named as the safetensors are.
    return {ST_NAME[k]: v.astype("<f4") for k, v in out.items() if k in ST_NAME}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="silero_vad.jit or silero_vad_16k.safetensors")
    ap.add_argument("out")
    ap.add_argument("--version", default="6.2.3", help="silero-vad version written in the header")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()

    with open(args.input, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    st = read_torchscript(args.input) if is_zip else read_safetensors(args.input)
    missing = [s for s, _ in TENSORS if s not in st]
    extra = sorted(set(st) - {s for s, _ in TENSORS})
    if missing or extra:
        raise SystemExit("unexpected tensors: missing %s, extra %s" % (missing, extra))

    major, minor, patch = (int(x) for x in args.version.split("."))
    enc_in, enc_out, kernel = [129, 128, 64, 64], [128, 64, 64, 128], 3

    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<i", GGML_MAGIC))
        model_type = b"silero-16k"
        f.write(struct.pack("<i", len(model_type)))
        f.write(model_type)
        f.write(struct.pack("<iii", major, minor, patch))
        f.write(struct.pack("<ii", 512, 64))  # window (samples), context (samples)
        f.write(struct.pack("<i", 4))
        for i in range(4):
            f.write(struct.pack("<iii", enc_in[i], enc_out[i], kernel))
        f.write(struct.pack("<ii", 128, 128))  # LSTM input, hidden
        f.write(struct.pack("<ii", 128, 1))  # final conv in, out

        for src, dst in TENSORS:
            data = st[src]
            if dst == "_model.stft.forward_basis_buffer":
                # kept 3-D (the reference does not squeeze it): [258, 1, 256]
                shape = list(reversed(data.shape))
                is_conv_w = True
            else:
                # the reference squeezes; final_conv.bias [1] becomes 0-D
                data = np.squeeze(data)
                shape = list(reversed(data.shape))
                is_conv_w = "weight" in dst and ("encoder" in dst or "decoder.decoder.2" in dst)
            ftype = 1 if is_conv_w else 0
            exp_shape, exp_type = EXPECTED[dst]
            if shape + [1] * (len(exp_shape) - len(shape)) != exp_shape or ftype != exp_type:
                raise SystemExit("%s: shape %s type %d, whisper.cpp wants %s type %d"
                                 % (src, shape, ftype, exp_shape, exp_type))
            data = np.ascontiguousarray(data, dtype="<f2" if ftype else "<f4")
            name = dst.encode("utf-8")
            f.write(struct.pack("<iii", len(shape), len(name), ftype))
            for d in shape:
                f.write(struct.pack("<i", d))
            f.write(name)
            f.write(data.tobytes())
            if not args.quiet:
                print("%-40s -> %-38s ne=%s %s" % (src, dst, shape, "f16" if ftype else "f32"))
    os.replace(tmp, args.out)
    if not args.quiet:
        print("wrote %s: %d bytes" % (args.out, os.path.getsize(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
