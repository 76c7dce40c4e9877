#!/usr/bin/env bash
# Runs the deterministic simulations for more seeds than the test suite does, in a release build:
#   the directory's registers (node/src/cluster/directory/paxos/sim.rs; the suite runs 200 seeds),
#   leases, failover and moves (node/src/handoff/sim/; the suite runs 100 seeds).
# `ops/sim.sh [SEEDS]` runs seeds 1 to SEEDS of each (default 10000). A seed that breaks an invariant stops the run
# and prints the command that replays it exactly.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-10000}"
TERN_SIM_SEEDS="$seeds" cargo test --release -p tern-node --lib cluster::directory::paxos::sim::the_registers \
  -- --nocapture
TERN_FAILOVER_SIM_SEEDS="$seeds" cargo test --release -p tern-node --lib handoff::sim::one_home \
  -- --nocapture
