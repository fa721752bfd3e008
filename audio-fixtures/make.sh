#!/usr/bin/env bash
# Makes the citizen-question fixtures in questions/ from manifest.toml.
#
#   audio-fixtures/make.sh           (re)generate every fixture; safe to run again
#   audio-fixtures/make.sh --check   generate into a temp dir and compare with questions/
#
# Needs: espeak-ng, sox (apt), python3 >= 3.11 (tomllib). Human-speech fixtures come
# from the Debian package named in their `source`; it is fetched with `apt-get
# download` into a cache outside the clone ($VOICEBOT_FIXTURE_CACHE, default
# ~/.cache/voicebot/fixtures) unless it is installed. If it cannot be had, the
# committed files for those fixtures are kept.
#
# Output is byte-for-byte deterministic for the same espeak-ng and sox versions:
# sox runs with -R (repeatable) and -D (no dither), and the line noise of the
# telephone version comes from a fixed-seed xorshift generator, not from sox.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
manifest=$here/manifest.toml
dest=$here/questions
cache=${VOICEBOT_FIXTURE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voicebot/fixtures}

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

for tool in espeak-ng sox python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "make.sh: $tool not found (apt-get install espeak-ng sox)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$dest
if [ "$check" = 1 ]; then out=$work/out; fi
mkdir -p "$out"

# sox: repeatable, no dither, quiet but not silent about errors.
SOX=(sox -R -D -V1)

# One line per fixture, tab-separated, and a check of the manifest on the way.
python3 - "$manifest" >"$work/list.tsv" <<'PY'
import re, sys, tomllib
m = tomllib.load(open(sys.argv[1], "rb"))
seen = set()
for f in m["fixture"]:
    fid = f["id"]
    assert re.fullmatch(r"[a-z0-9-]+", fid), f"bad id {fid!r}"
    assert fid not in seen, f"duplicate id {fid}"
    seen.add(fid)
    assert f["lang"] in ("da", "en"), fid
    for k in ("text", "intent", "topic", "keywords", "source"):
        assert k in f, f"{fid}: missing {k}"
    assert all(k == k.lower() for k in f["keywords"]), f"{fid}: keywords must be lowercase"
    src = f["source"]
    if src == "espeak-ng":
        assert 140 <= f["speed"] <= 175 and 35 <= f["pitch"] <= 65, fid
        row = [fid, "espeak", f["voice"], str(f["speed"]), str(f["pitch"]), f["text"]]
    elif src.startswith("human: "):
        row = [fid, "human", src[len("human: "):], f["origin"], f["origin_sha256"], ""]
    else:
        raise SystemExit(f"{fid}: unknown source {src!r}")
    assert not any("\t" in c or "\n" in c for c in row), fid
    print("\t".join(row))
PY

# Deterministic band noise source: uniform white noise, +-96 LSB (about -55 dBFS RMS),
# as many 16 kHz samples as the clean file, seeded from the fixture id.
make_noise() { # id nsamples out.raw
  python3 - "$1" "$2" "$3" <<'PY'
import sys, zlib, array
fid, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
x = zlib.crc32(fid.encode()) or 1
a = array.array("h", bytes(2 * n))
for i in range(n):
    x ^= (x << 13) & 0xFFFFFFFF; x ^= x >> 17; x ^= (x << 5) & 0xFFFFFFFF
    a[i] = (x % 193) - 96
if sys.byteorder != "little":
    a.byteswap()
open(path, "wb").write(a.tobytes())
PY
}

# The file a human fixture is cut from: installed package, else the cache, else apt-get download.
package_file() { # package origin sha256 -> prints path, or returns 1
  local pkg=$1 origin=$2 sum=$3 root
  if [ -f "/$origin" ] && echo "$sum  /$origin" | sha256sum -c --status; then
    echo "/$origin"; return 0
  fi
  root=$cache/$pkg/root
  if [ ! -f "$root/$origin" ]; then
    mkdir -p "$cache/$pkg"
    ( cd "$cache/$pkg" && rm -f ./*.deb && apt-get download "$pkg" >/dev/null 2>&1 ) || {
      echo "make.sh: apt-get download $pkg failed (apt-get update first?)" >&2; return 1; }
    rm -rf "$root" && dpkg-deb -x "$cache/$pkg"/*.deb "$root"
  fi
  if ! echo "$sum  $root/$origin" | sha256sum -c --status; then
    echo "make.sh: $pkg: $origin does not have the sha256 in the manifest" >&2; return 1
  fi
  echo "$root/$origin"
}

# clean -> telephone: light line noise; the channel of ITU-T G.712 (flat 300-3400 Hz,
# -6 dB at 250 and 3600 Hz, >= 28 dB down from 3700 Hz), 8 kHz, G.711 A-law, back to s16.
telephone() { # id clean.wav out.tel.wav
  local n
  n=$(soxi -s "$2")
  make_noise "$1" "$n" "$work/noise.raw"
  "${SOX[@]}" -m -v 1 "$2" -v 1 -t raw -r 16000 -e signed-integer -b 16 -c 1 "$work/noise.raw" \
    -r 8000 -e a-law -b 8 "$work/alaw.wav" sinc -t 100 250-3600 -t 400 rate -v 8000
  "${SOX[@]}" "$work/alaw.wav" -e signed-integer -b 16 "$3"
}

count=0
kept=0
while IFS=$'\t' read -r id kind a b c text; do
  clean=$out/$id.wav
  tel=$out/$id.tel.wav
  case "$kind" in
    espeak)
      espeak-ng -v "$a" -s "$b" -p "$c" -w "$work/tts.wav" "$text"
      # Trim espeak's own lead-in/tail so the padding is exact.
      "${SOX[@]}" "$work/tts.wav" -r 16000 -c 1 -e signed-integer -b 16 "$clean" \
        silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse \
        rate -v 16000 norm -3 pad 0.5 1.0
      ;;
    human)
      if ! src=$(package_file "$a" "$b" "$c"); then
        if [ "$check" = 0 ] && [ -f "$clean" ] && [ -f "$tel" ]; then
          echo "make.sh: keeping the committed $id" >&2; kept=$((kept + 1)); continue
        fi
        echo "make.sh: cannot make $id" >&2; exit 1
      fi
      fmt=()
      case "$src" in *.raw) fmt=(-t raw -r 16000 -e signed-integer -b 16 -c 1) ;; esac
      "${SOX[@]}" "${fmt[@]}" "$src" -r 16000 -c 1 -e signed-integer -b 16 "$clean" \
        rate -v 16000 norm -3 pad 0.5 1.0
      ;;
  esac
  telephone "$id" "$clean" "$tel"
  count=$((count + 1))
done <"$work/list.tsv"

# Drop outputs of fixtures that left the manifest.
cut -f1 "$work/list.tsv" | sort >"$work/ids"
for f in "$out"/*.wav; do
  [ -e "$f" ] || continue
  base=$(basename "$f"); base=${base%.wav}; base=${base%.tel}
  grep -qxF "$base" "$work/ids" || rm -f "$f"
done

{
  echo "# tools that made these files (same versions => identical bytes)"
  espeak-ng --version | head -1 | sed 's/ *Data at:.*//'
  sox --version | sed 's/^sox: *//'
} >"$out/GENERATED_WITH.txt"

if [ "$check" = 1 ]; then
  bad=0
  for f in "$out"/*; do
    name=$(basename "$f")
    if ! cmp -s "$f" "$dest/$name"; then echo "differs: questions/$name" >&2; bad=1; fi
  done
  for f in "$dest"/*; do
    [ -e "$out/$(basename "$f")" ] || { echo "stale: questions/$(basename "$f")" >&2; bad=1; }
  done
  [ "$bad" = 0 ] && echo "make.sh --check: $count fixtures identical"
  exit "$bad"
fi
echo "make.sh: $count fixtures made, $kept kept, in $dest ($(du -ch "$dest"/*.wav | tail -1 | cut -f1))"
