#!/usr/bin/env bash
# Bounded fuzzing of the gateway's parsers: every cargo-fuzz target in fuzz/ for
# FUZZ_SECONDS (default 60) each, from the seed corpora in fuzz/corpus/<target>/ (read only;
# what a run discovers goes to a scratch directory). A crash stops the script with its
# input under fuzz/artifacts/<target>/: make it a regression test, fix, run again.
#
#   scripts/fuzz.sh                 # every target, a minute each
#   scripts/fuzz.sh feedback        # one target
#   FUZZ_SECONDS=600 scripts/fuzz.sh
#
# Needs the nightly toolchain (installed beside stable here); installs cargo-fuzz when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: needs the nightly toolchain (cargo +nightly)" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

seconds="${FUZZ_SECONDS:-60}"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd fuzz
cargo +nightly fuzz build
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  echo "== $t: ${seconds}s"
  status=0
  cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$scratch/$t.log" 2>&1 || status=$?
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ +DONE)' "$scratch/$t.log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$scratch/$t.log" >&2
    echo "fuzz.sh: $t failed (exit $status); the input is under fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each, no crash"
