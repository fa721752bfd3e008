#!/usr/bin/env bash
# Sets up a fresh Debian machine and runs the gateway with its embedded defaults
# (SIP on 127.0.0.1:5060 UDP+TCP, HTTP on 127.0.0.1:8080). Extra arguments go to
# `voicebot serve`, e.g. --config voicebot.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo run --locked --release --bin voicebot -- serve "$@"
