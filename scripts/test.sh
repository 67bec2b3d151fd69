#!/usr/bin/env bash
# The test command: installs build dependencies if missing, then runs every test of the
# workspace. This is what CI runs (.ci/run) and what README tells you to run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --ci
cargo test --workspace "$@"
