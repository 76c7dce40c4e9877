#!/usr/bin/env bash
# Runs the deterministic simulation of the directory's registers (node/src/cluster/directory/paxos/sim.rs) for
# more seeds than the test suite's 200: `ops/directory-sim.sh [SEEDS]` (default 100000, in a release build; the
# suite's debug build ran 2,000 seeds in 32 s on two cores, all passing). A seed that breaks an invariant stops the run and prints the command that
# replays it (`TERN_SIM_SEED=S cargo test -p tern-node cluster::directory::paxos::sim -- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."
TERN_SIM_SEEDS="${1:-100000}" cargo test --release -p tern-node --lib cluster::directory::paxos::sim::the_registers \
  -- --nocapture
