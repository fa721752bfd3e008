#!/usr/bin/env bash
# Sets up a fresh Debian machine and runs the whole test suite against real peers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --locked --all-targets 2>&1
