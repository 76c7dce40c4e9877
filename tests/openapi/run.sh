#!/usr/bin/env bash
# Schemathesis against a live `tern dev`: every operation of /openapi.json is called with generated inputs (the
# admin token sent), and the run fails on any 5xx (`not_a_server_error`) or any answer whose body does not match
# the document (`response_schema_conformance`), nor a status, content type or header it does not declare, nor a
# 405 without `Allow`. Bounded: a few examples per operation and a time budget. Extra arguments go to
# `schemathesis run` (e.g. `--checks all` to see what else it finds).
#
#   tests/openapi/run.sh            # TERN_BIN (default target/debug/tern), SCHEMATHESIS (default on PATH),
#                                   # MAX_EXAMPLES (default 20), MAX_TIME (seconds, default 90),
#                                   # SEED (default random; Schemathesis prints the one it ran)
set -euo pipefail
cd "$(dirname "$0")/../.."

tern=${TERN_BIN:-$PWD/target/debug/tern}
schemathesis=${SCHEMATHESIS:-schemathesis}
max_examples=${MAX_EXAMPLES:-20}
max_time=${MAX_TIME:-90}
token="openapi-$$-$RANDOM"

[ -x "$tern" ] || { echo "no tern binary at $tern (cargo build --bins first)"; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
"$tern" dev --listen "127.0.0.1:$port" --data-dir "$work/data" --admin-token "$token" >"$work/node.log" 2>&1 &
node=$!
cleanup() {
  kill "$node" 2>/dev/null || true
  wait "$node" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -fsS "$base/health" >/dev/null 2>&1 && break
  kill -0 "$node" 2>/dev/null || { echo "tern dev exited:"; cat "$work/node.log"; exit 1; }
  sleep 0.1
done
curl -fsS "$base/health" >/dev/null || { echo "tern dev did not answer on $base:"; cat "$work/node.log"; exit 1; }

# Live actors (`tern dev` registers counter, room and sqlite), so that the actor, inspector and admin routes are
# called on actors that exist as well as on generated ids: the operations on one actor take its id (and, for
# actions, a real action name) from schemathesis.toml below; DELETE /actors/{actor_id} destroys a fourth one.
actor() {
  curl -fsS -X PUT "$base/actors" -H 'content-type: application/json' -d "{\"name\":\"$1\",\"key\":\"${2:-openapi}\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["actor"]["actor_id"])'
}
counter=$(actor counter)
sqlite=$(actor sqlite)
room=$(actor room)
doomed=$(actor counter doomed)
cat >"$work/schemathesis.toml" <<TOML
[[operations]]
include-operation-id-regex = "^(action|inspectorAction)$"
parameters = { "path.actor_id" = "$counter", "path.name" = "increment" }

[[operations]]
include-operation-id-regex = "^inspector(Schema|Rows|Execute|Export)$"
parameters = { "path.actor_id" = "$sqlite" }

[[operations]]
include-operation-id-regex = "^(queueSend|actorHealth|actorMetadata|inspector(Summary|State|PatchState|Connections|Rpcs|Traces|WorkflowHistory|WorkflowReplay|Queue|QueueSend|QueueReset|Migrate))$"
parameters = { "path.actor_id" = "$counter" }

[[operations]]
include-operation-id-regex = "^(sleepActor|replicas|migrateActor|kvGet)$"
parameters = { "path.actor_id" = "$room" }

[[operations]]
include-operation-id = "destroyActor"
parameters = { "path.actor_id" = "$doomed" }
TOML

checks=not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance
checks=$checks,response_headers_conformance,unsupported_method
seed=${SEED:-$RANDOM}
st() {
  (cd "$work" && "$schemathesis" --config-file "$work/schemathesis.toml" run "$base/openapi.json" \
    --checks "$checks" \
    --header "Authorization: Bearer $token" \
    --max-examples "$max_examples" \
    --request-timeout 10 \
    --workers 1 \
    --seed "$seed" \
    --suppress-health-check all \
    "$@")
}
status=0
# Everything but destroying actors first (the stateful phase would otherwise destroy the live actors early on,
# through the ids that GET /actors lists), then DELETE /actors/{actor_id} alone, on the actor kept for it.
st --exclude-operation-id destroyActor --max-time "$max_time" "$@" || status=$?
st --include-operation-id destroyActor --max-time 10 "$@" || status=$?

# What the node answered, by route and status (its own count): shows that the run reached real answers.
echo "== answers by route and status (tern_http_requests_total)"
curl -fsS "$base/metrics" | grep '^tern_http_requests_total' | sed -E 's/^tern_http_requests_total\{(.*)\} (.*)$/\2 \1/' | sort -k2 || true

if grep -q "panicked" "$work/node.log"; then
  echo "the node panicked during the run:"
  grep -A5 "panicked" "$work/node.log" | head -40
  status=1
fi
exit "$status"
