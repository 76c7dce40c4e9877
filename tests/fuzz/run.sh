#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: builds them all once with cargo fuzz (libFuzzer, AddressSanitizer,
# debug assertions and overflow checks), then runs each for N seconds (default 30), two at a time, starting from
# the committed corpus (corpus/<target>/, which it never writes) and growing a scratch copy, with the target's
# dictionary of tokens (dict/<target>.dict) where it has one. An input that makes a target panic, crash or run
# longer than 10 s is saved under artifacts/<target>/; the script then prints its path and the command that
# replays it, and exits non-zero.
#
# Usage: tests/fuzz/run.sh [seconds-per-target]
#
# A machine with only the stable toolchain runs cargo fuzz with RUSTC_BOOTSTRAP=1, which lets stable rustc take
# the unstable sanitizer flags; `cargo +nightly fuzz ...` does the same where a nightly toolchain is installed.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
parallel=2
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --version 0.13.2 --locked --quiet
fi

echo "== building the fuzz targets"
cargo fuzz build --target-dir target
bin=target/x86_64-unknown-linux-gnu/release
mapfile -t targets < <(cargo fuzz list)

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# Fuzzes one target; its libFuzzer output goes to $scratch/<target>.log, and a crash leaves $scratch/<target>.crash.
fuzz() {
  local target="$1" dict=()
  [ -f "dict/$target.dict" ] && dict=(-dict="dict/$target.dict")
  mkdir -p "$scratch/$target" "artifacts/$target"
  if ! "$bin/$target" "$scratch/$target" "corpus/$target" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"$scratch/$target.log" 2>&1; then
    touch "$scratch/$target.crash"
  fi
}

echo "== fuzzing ${#targets[@]} targets for ${seconds} s each, ${parallel} at a time"
running=0
for target in "${targets[@]}"; do
  if [ "$running" -ge "$parallel" ]; then
    wait -n
    running=$((running - 1))
  fi
  fuzz "$target" &
  running=$((running + 1))
done
wait

crashed=()
for target in "${targets[@]}"; do
  log="$scratch/$target.log"
  if [ -e "$scratch/$target.crash" ]; then
    crashed+=("$target")
    cp "$log" "artifacts/$target/fuzz.log"
    echo "!! $target crashed (its whole output: tests/fuzz/artifacts/$target/fuzz.log):"
    grep -A 2 -E 'panicked at|^==[0-9]+==ERROR|^SUMMARY' "$log" | grep -v -E '^ *#[0-9]+ ' | sed 's/^/   /' || true
    artifact="$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | sed 's/.* //' || true)"
    echo "   artifact: tests/fuzz/${artifact:-artifacts/$target/ (none written: see the log above)}"
    echo "   replay:   cd tests/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $target ${artifact:-<artifact>}"
    echo "             (or, with a nightly toolchain: cargo +nightly fuzz run $target ${artifact:-<artifact>})"
  else
    runs="$(grep -o 'number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
    echo "ok $target: $runs inputs in ${seconds} s, $(find "$scratch/$target" -type f | wc -l) in the grown corpus"
  fi
done

if [ ${#crashed[@]} -gt 0 ]; then
  echo "== fuzz targets crashed: ${crashed[*]}"
  exit 1
fi
echo "== fuzz: ${#targets[@]} targets ran ${seconds} s each without a crash"
