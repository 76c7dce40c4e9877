#!/usr/bin/env bash
# Starts one `tern node` in the background with the config the configuration module rendered, and waits for its
# gateway to answer /health. Environment: TERN, ID, CONFIG (the file's text), CONFIG_FILE, RUN_DIR, TOKEN_FILE,
# GATEWAY_URL.
set -euo pipefail
mkdir -p "$RUN_DIR" "$(dirname "$CONFIG_FILE")"
pid_file="$RUN_DIR/$ID.pid"
log="$RUN_DIR/$ID.log"
if [ -s "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  echo "$ID: already running (pid $(cat "$pid_file")); stop it first" >&2
  exit 1
fi
printf '%s' "$CONFIG" >"$CONFIG_FILE"
# A session of its own, every descriptor away from Terraform's: the node outlives this script.
TERN_ADMIN_TOKEN="$(cat "$TOKEN_FILE")" RUST_LOG="${RUST_LOG:-info}" \
  setsid "$TERN" node --config "$CONFIG_FILE" </dev/null >"$log" 2>&1 &
echo $! >"$pid_file"
for _ in $(seq 1 150); do
  if curl -fsS -o /dev/null --max-time 1 "$GATEWAY_URL/health"; then
    echo "$ID: pid $(cat "$pid_file"), gateway $GATEWAY_URL"
    exit 0
  fi
  if ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    break
  fi
  sleep 0.2
done
echo "$ID: did not answer $GATEWAY_URL/health; its log:" >&2
tail -n 30 "$log" >&2
kill "$(cat "$pid_file")" 2>/dev/null || true
exit 1
