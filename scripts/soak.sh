#!/usr/bin/env bash
# Soak: sipp calls with audio (the built-in uac_pcap scenario: PCMA speech, DTMF "1",
# BYE; about 9 s each) against one gateway at --rate calls/s, in rounds of --round
# calls. RSS is sampled every second (soak-rss.tsv: seconds, RSS KiB, calls ended).
# After each round the gateway is left idle until its calls are over, and its idle RSS
# is noted; the first round is the warm-up. The report gives the bytes per call from
# the idle RSS after the warm-up to the idle RSS at the end, open fds, and the SIP
# stack's dialogs and transactions (voicebot_sip_dialogs / _transactions) at the end.
#
#   scripts/soak.sh [--calls 10000] [--round 2000] [--rate 50] [--bin target/release/voicebot] [--out DIR]
#
# Needs sipp (apt sip-tester), curl and the speech model (models/fetch.sh); build the
# gateway first: cargo build --release --locked.
set -euo pipefail
cd "$(dirname "$0")/.."

calls=10000 round=2000 rate=50 out="" bin="${CARGO_TARGET_DIR:-target}/release/voicebot"
while [ $# -gt 0 ]; do
  case "$1" in
    --calls) calls=$2; shift 2 ;;
    --round) round=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "no gateway binary at $bin (cargo build --release --locked)" >&2; exit 2; }
[ "$calls" -gt "$round" ] || { echo "--calls must exceed --round (the warm-up round)" >&2; exit 2; }
out=${out:-$(mktemp -d /tmp/voicebot-soak.XXXXXX)}
mkdir -p "$out"
ln -sfn /usr/share/sip-tester "$out/pcap"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# sipp gives each call its own media port counting up from -mp ([auto_media_port]): a
# high ephemeral base passes 65535 within a round, and the gateway rightly answers
# those INVITEs 488. The base is a free UDP port low enough for a round to fit.
free_media_base() {
  python3 -c 'import socket, sys
for p in range(30000, 40000, 2):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", p)); s.close(); print(p); sys.exit()
    except OSError:
        pass
sys.exit("no free media port")'
}
sip_port=$(free_port) http_port=$(free_port) uac_port=$(free_port) media_port=$(free_media_base)
cat > "$out/voicebot.toml" <<EOF
[sip]
listen = "127.0.0.1:$sip_port"
max_calls = 2000
[rtp]
ports = "20000-29999"
[http]
listen = "127.0.0.1:$http_port"
[privacy]
record_path = "$out/records.sqlite"
EOF

RUST_LOG=warn,rsipstack=error,voicebot_gateway::serve=info "$bin" serve --config "$out/voicebot.toml" >"$out/serve.log" 2>&1 &
gw=$!
sampler=""
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  kill "$gw" 2>/dev/null
  wait "$gw" 2>/dev/null || true
}
trap cleanup EXIT

metric() { # the value of an unlabelled metric, or "n/a"
  curl -s "http://127.0.0.1:$http_port/metrics" | awk -v m="$1" '$1 == m {print $2; f=1} END {if (!f) print "n/a"}'
}
ended_calls() {
  curl -s "http://127.0.0.1:$http_port/metrics" | awk '/^voicebot_calls_total\{/ {s += $2} END {print s + 0}'
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$gw/status"; }
fds() { ls "/proc/$gw/fd" | wc -l; }

up() { curl -sf "http://127.0.0.1:$http_port/healthz" >/dev/null; }
for _ in $(seq 1 240); do
  up && break
  kill -0 "$gw" 2>/dev/null || { cat "$out/serve.log"; exit 1; }
  sleep 0.5
done
up || { echo "gateway did not start" >&2; exit 1; }
# The prompt cache fills in the background (a neural voice takes a minute or more for
# every answer): that growth is the cache, not the calls, so it is waited out.
for _ in $(seq 1 1200); do
  grep -q "prompt cache warmed" "$out/serve.log" && break
  sleep 0.5
done
grep -q "prompt cache warmed" "$out/serve.log" || echo "soak: the prompt cache is still warming" >&2

start=$(date +%s)
(
  while kill -0 "$gw" 2>/dev/null; do
    printf '%s\t%s\t%s\n' "$(( $(date +%s) - start ))" "$(rss_kib)" "$(ended_calls)"
    sleep 1
  done
) > "$out/soak-rss.tsv" &
sampler=$!

# Waits until no call is in progress (bounded: 120 s), then a few seconds more.
settle() {
  for _ in $(seq 1 240); do
    [ "$(metric voicebot_calls_active)" = "0" ] && break
    sleep 0.5
  done
  sleep 5
}

fds_start=$(fds)
rss_start=$(rss_kib)
printf 'round\tcalls\tfailed\tidle_rss_kib\n' > "$out/rounds.tsv"
done_calls=0 failed_total=0 n=0 warm_rss="" warm_calls=0
while [ "$done_calls" -lt "$calls" ]; do
  n=$((n + 1))
  this=$(( calls - done_calls < round ? calls - done_calls : round ))
  ( cd "$out" && timeout $(( this / rate + 300 )) sipp -sn uac_pcap -i 127.0.0.1 -p "$uac_port" \
      -mp "$media_port" -s bot "127.0.0.1:$sip_port" -r "$rate" -l 2000 -m "$this" \
      -nostdin -trace_stat -stf "round$n.csv" >"round$n.out" 2>&1 ) || true
  failed=$(awk -F';' 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "FailedCall(C)") c = i} END {print $c + 0}' "$out/round$n.csv" 2>/dev/null || echo "?")
  done_calls=$((done_calls + this))
  failed_total=$((failed_total + ${failed:-0}))
  settle
  idle=$(rss_kib)
  printf '%s\t%s\t%s\t%s\n' "$n" "$this" "$failed" "$idle" >> "$out/rounds.tsv"
  echo "round $n: $this calls, $failed failed, idle RSS $idle KiB" >&2
  if [ "$n" = 1 ]; then warm_rss=$idle; warm_calls=$done_calls; fi
done

rss_end=$(rss_kib)
measured=$((done_calls - warm_calls))
{
  echo "soak: $done_calls calls at $rate/s in rounds of $round ($failed_total failed), binary $bin"
  echo "RSS: start $rss_start KiB, idle after warm-up ($warm_calls calls) $warm_rss KiB, end $rss_end KiB"
  awk -v a="$warm_rss" -v b="$rss_end" -v n="$measured" \
    'BEGIN {printf "growth after warm-up: %.0f bytes per call over %d calls\n", (b - a) * 1024 / n, n}'
  echo "open fds: start $fds_start, end $(fds)"
  echo "SIP dialogs at the end: $(metric voicebot_sip_dialogs); transactions: $(metric voicebot_sip_transactions)"
  echo "calls in progress at the end: $(metric voicebot_calls_active)"
  echo "rounds (idle RSS after each):"
  column -t "$out/rounds.tsv"
  echo "RSS samples: $out/soak-rss.tsv"
} | tee "$out/report.txt"
