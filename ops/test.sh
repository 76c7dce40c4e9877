#!/usr/bin/env bash
# Runs every test of Tern: lints, the Rust unit and end-to-end tests, Schemathesis against the OpenAPI document, the
# fuzz targets for a bounded time, the conformance suite that drives the official RivetKit JS client against a real
# `tern dev` process, the README's tour run as pasted, the inspector web page in a real browser against a real
# cluster, and the deploy suite (Terraform, cloud-init, systemd, checkov, hadolint, compose, the container image).
# Installs what it needs (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null || need_apt+=(build-essential)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v ip >/dev/null || need_apt+=(iproute2)
# The sync tests (tests/tests/fsync.rs) watch a node's fsync calls with strace; the partition tests cut links one
# way with nft.
command -v strace >/dev/null || need_apt+=(strace)
command -v nft >/dev/null || need_apt+=(nftables)
command -v curl >/dev/null || need_apt+=(curl)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

echo "== prerequisites"
# The partition and region tests make network namespaces, veth pairs and a TUN device: say so at once if they
# cannot, rather than after the build.
probe="tern-probe-$$"
if ip netns add "$probe" 2>/dev/null; then
  ip netns del "$probe"
else
  echo "!! network namespaces cannot be made here (root and iproute2 needed): the partition and region tests will fail"
fi
[ -c /dev/net/tun ] || echo "!! /dev/net/tun is missing: the region tests will fail"

echo "== lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== build"
cargo build --workspace --bins --quiet

# Every suite runs even when an earlier one fails, and the end says which failed.
failed=()

echo "== rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast || failed+=("rust tests")
else
  cargo test --workspace --no-fail-fast || failed+=("rust tests")
fi

echo "== openapi contract (tests/openapi/run.sh)"
# Schemathesis against a live `tern dev` with the admin token: every operation of /openapi.json, generated inputs,
# no 5xx and every answer matching the document. About 2 minutes. Installed into a venv of its own when missing
# (its dependencies would upgrade ones that checkov, in the deploy suite's venv, pins).
venv=/opt/tern-schemathesis-venv
# Pinned: its CLI and checks change between releases.
schemathesis_version=4.32.5
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "version $schemathesis_version\$"; then
  echo "== installing schemathesis $schemathesis_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$schemathesis_version"
fi
SCHEMATHESIS="$venv/bin/schemathesis" tests/openapi/run.sh || failed+=("openapi contract")

echo "== fuzz (tests/fuzz/run.sh)"
# Every decoder of outside input under libFuzzer for 30 s each, two at a time, after one build of the targets in
# their own workspace (cargo-fuzz is installed by the script when missing; stable rustc with RUSTC_BOOTSTRAP=1).
# A crash prints its artifact and the command that replays it. About 8 min on a fresh 2-core machine: 40 s to
# install cargo-fuzz, 5 to 6 min to build, 2 min to fuzz.
tests/fuzz/run.sh 30 || failed+=("fuzz")

echo "== rivetkit conformance (tests/js)"
# `npm ci` may refuse a lockfile written on another platform (its optional packages are not all served);
# `npm install` honours the lockfile's pinned versions.
(cd tests/js && npm install --no-audit --no-fund --loglevel=error)
(cd tests/js && TERN_BIN="$PWD/../../target/debug/tern" TERN_EXAMPLE_BIN="$PWD/../../target/debug/tern-example" npm test) \
  || failed+=("rivetkit conformance")

echo "== readme tour (README.md, docs/writing-actors.md)"
# Runs the documents' examples as pasted against real nodes and compares their output; prints PASS or FAIL.
(cd tests/js && node readme-tour.js) || failed+=("readme tour")

echo "== inspector page (tests/ui)"
# The page at /ui/ in Debian's chromium, driven by playwright-core (which downloads no browser), against a real
# three-node cluster and a `tern dev`: sign-in, finding an actor, editing state, actions and live events, SQL, a
# node killed with kill -9 and its actor's failover. About 20 s.
(cd tests/ui && npm install --no-audit --no-fund --loglevel=error)
(cd tests/ui && TERN_BIN="$PWD/../../target/debug/tern" npm test) || failed+=("inspector page")

echo "== deploy (ops/deploy/check.sh)"
# terraform fmt and tests (the configuration module; the local example with real `tern node` processes, driven
# by the official client from tests/js, then destroyed), the user-data against cloud-init's schema, the systemd
# unit, checkov over the AWS modules, hadolint, docker-compose config, and the runtime image built with podman
# from target/debug/tern and run.
TERN_BIN="$PWD/target/debug/tern" ops/deploy/check.sh || failed+=("deploy")

if [ ${#failed[@]} -gt 0 ]; then
  echo "== FAILED: ${failed[*]}"
  exit 1
fi
echo "== every suite passed: rust tests, openapi contract, fuzz, rivetkit conformance, readme tour, inspector page, deploy"
