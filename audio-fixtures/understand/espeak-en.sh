#!/usr/bin/env bash
# Renders the English questions of questions.toml in espeak-ng's English voices: a robotic,
# accented English that whisper's language tokens are often unsure of on a Danish line
# (what the first turn's language check in src/stt/language.rs is measured on).
#
#   audio-fixtures/understand/espeak-en.sh
#   VOICEBOT_FIXTURE_CACHE=~/.cache/voicebot/fixtures/espeak-en \
#     voicebot bench understand --lang en --line da --conditions clean
#
# Output: ${VOICEBOT_FIXTURE_CACHE:-~/.cache/voicebot/fixtures}/espeak-en/understand/<id>.clean.wav
# (8 kHz mono s16: G.712 band, A-law round trip, 0.4 s silence before and 1.0 s after).
# Voice (6 variants) and speed (140-174) follow from the id's crc32, so the files repeat.
# Needs: python3 >= 3.11, espeak-ng, sox.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${VOICEBOT_FIXTURE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voicebot/fixtures}
out=$cache/espeak-en/understand
mkdir -p "$out"
python3 - "$here/questions.toml" "$out" <<'PY'
import os, subprocess, sys, tempfile, tomllib, zlib
questions, out = sys.argv[1:3]
voices = ["en-gb", "en-us", "en-gb+m3", "en-us+f2", "en-gb-x-rp", "en+m5"]
n = 0
with tempfile.TemporaryDirectory() as work:
    for q in tomllib.load(open(questions, "rb"))["q"]:
        if q["lang"] != "en":
            continue
        h = zlib.crc32(q["id"].encode())
        raw, alaw = os.path.join(work, "raw.wav"), os.path.join(work, "alaw.wav")
        subprocess.run(["espeak-ng", "-v", voices[h % len(voices)], "-s", str(140 + h % 35),
                        "-w", raw, q["text"]], check=True)
        subprocess.run(["sox", "-R", "-D", raw, "-r", "8000", "-c", "1", "-e", "a-law", alaw,
                        "sinc", "300-3400", "pad", "0.4", "1.0"], check=True)
        subprocess.run(["sox", "-R", "-D", alaw, "-e", "signed-integer", "-b", "16",
                        os.path.join(out, f"{q['id']}.clean.wav")], check=True)
        n += 1
print(f"{n} English questions in espeak-ng voices in {out}", file=sys.stderr)
PY
