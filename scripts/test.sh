#!/usr/bin/env bash
# The one test command (README): installs what the tests need when it is missing, then runs
# format, lint and the whole test suite (real brokers, real clients) in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || need_apt+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} (Debian packages)…"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The Debian package may start a system broker on 1883; the tests never use it (free ports only).

# rotel, the OTLP collector of the trace tests (PyPI package shipping the `rotel-agent` binary).
rotel_agent() {
  command -v rotel-agent 2>/dev/null && return 0
  python3 -c 'import os, rotel; p = os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"); print(p) if os.access(p, os.X_OK) else exit(1)' 2>/dev/null
}
if ! rotel_agent >/dev/null; then
  echo "installing rotel (PyPI package)…"
  python3 -m pip install --quiet rotel
fi
ROTEL_AGENT="$(rotel_agent)" || { echo "rotel-agent not found after installing rotel" >&2; exit 1; }
export ROTEL_AGENT

# No import cycle among the top-level modules of each crate (docs/architecture.md).
for src in actors/src src chaos/src; do python3 scripts/module-cycles.py "$src" --quiet; done
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features fault-injection -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The chaos scenarios (chaos/tests/) run the gateway binary this same command builds (the root
# package's `edgegw`, with fault-injection): point them at it so they never start a nested
# cargo build of their own.
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
export EDGEGW_BIN="$target_dir/release/edgegw"
# Unit, integration, black-box tests and the chaos scenarios (no doc-tests: the crates have
# none).
cargo test --workspace --release --features fault-injection --lib --bins --tests "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo '^test result: .* ([0-9]+) passed' "$log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '; [0-9]+ failed' "$log" | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}')
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
