#!/usr/bin/env bash
# Checks that the cluster converged and serves actors: every gateway lists every node alive; an actor created
# through the first gateway in the last region answers through every gateway, keeping its count; with
# CLIENT_MODULES, the official client (rivetkit) calls and connects through two gateways. Writes what it found to
# RESULT (JSON). Environment: GATEWAYS (URLs), NODES (ids), REGIONS, TOKEN_FILE, RESULT, CLIENT_MODULES.
set -euo pipefail
token=$(cat "$TOKEN_FILE")
read -r -a gateways <<<"$GATEWAYS"
read -r -a nodes <<<"$NODES"
read -r -a regions <<<"$REGIONS"
fail() {
  echo "cluster check: $*" >&2
  exit 1
}

# Convergence: every gateway's /cluster/members lists exactly the nodes, all alive (60 s at most).
want=$(printf '%s\n' "${nodes[@]}" | sort | jq -R . | jq -sc .)
deadline=$((SECONDS + 60))
for gateway in "${gateways[@]}"; do
  while :; do
    seen=$(curl -fsS --max-time 2 -H "Authorization: Bearer $token" "$gateway/cluster/members" |
      jq -c '[.members[] | select(.state == "alive") | .id] | sort' 2>/dev/null || echo '[]')
    [ "$seen" = "$want" ] && break
    [ "$SECONDS" -lt "$deadline" ] || fail "$gateway sees $seen alive, not $want"
    sleep 0.5
  done
done
echo "converged: every gateway lists $want alive"

# An actor homed in the last region, created through the first gateway, called through every gateway.
key="terraform-check-$(date +%s%N)"
home=${regions[-1]}
created=$(curl -fsS --max-time 10 -X PUT "${gateways[0]}/actors" -H 'content-type: application/json' \
  -d "{\"name\":\"counter\",\"key\":\"$key\",\"runner_name_selector\":\"default\",\"crash_policy\":\"sleep\",\"datacenter\":\"$home\"}")
actor=$(jq -r '.actor.actor_id' <<<"$created")
[ "$(jq -r '.actor.datacenter' <<<"$created")" = "$home" ] || fail "actor not placed in $home: $created"
counts=()
for gateway in "${gateways[@]}"; do
  answer=$(curl -fsS --max-time 10 -X POST \
    "$gateway/gateway/counter/action/increment?rvt-namespace=default&rvt-method=get&rvt-key=$key" -d '{"args":[1]}')
  counts+=("$(jq -r '.output' <<<"$answer")")
done
expected=$(seq -s ' ' 1 "${#gateways[@]}")
[ "${counts[*]}" = "$expected" ] || fail "counts through the gateways were ${counts[*]}, not $expected"
echo "actor $actor (counter/$key, home $home) counted ${counts[*]} through ${#gateways[@]} gateways"

# The official client: a stateless call through the first gateway, a connection with events through the last.
client="null"
if [ -n "${CLIENT_MODULES:-}" ]; then
  [ -d "$CLIENT_MODULES/rivetkit" ] && [ -d "$CLIENT_MODULES/ws" ] || fail "no rivetkit and ws in $CLIENT_MODULES"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  ln -s "$CLIENT_MODULES" "$work/node_modules"
  cat >"$work/client.mjs" <<'JS'
import WebSocket from "ws";
globalThis.WebSocket = WebSocket;
const { createClient } = await import("rivetkit/client");
const [first, last, key] = process.argv.slice(2);
const stateless = await createClient(first).counter.getOrCreate([key]).increment(5);
const conn = createClient(last).counter.getOrCreate([key]).connect();
const event = new Promise((resolve) => conn.on("newCount", resolve));
const reply = await conn.increment(1);
const seen = await event;
await conn.dispose();
console.log(JSON.stringify({ stateless, reply, event: seen }));
process.exit(0);
JS
  client=$(cd "$work" && timeout 60 node client.mjs "${gateways[0]}" "${gateways[-1]}" "$key-client")
  [ "$client" = '{"stateless":5,"reply":6,"event":6}' ] || fail "the official client saw $client"
  echo "official client: $client"
fi

jq -n --argjson nodes "$want" --arg actor "$actor" --arg home "$home" --argjson client "$client" \
  --argjson counts "[$(IFS=,; echo "${counts[*]}")]" \
  '{converged: $nodes, actor: $actor, home: $home, counts: $counts, client: $client}' >"$RESULT.new"
mv "$RESULT.new" "$RESULT"
