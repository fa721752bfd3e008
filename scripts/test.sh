#!/usr/bin/env bash
# Sets up a fresh Debian machine and runs the whole test suite against real peers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The knowledge base embedded for the second opinion on meaning, once, before the
# gateways that the tests start in parallel would each do it.
cargo run --locked --quiet --bin voicebot -- intents warm
cargo test --locked --all-targets 2>&1
