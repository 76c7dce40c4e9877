#!/usr/bin/env bash
# Stops one node gracefully (SIGTERM: actors put to sleep, the cluster told; SIGKILL after 30 s) and removes its
# config, data, pid file and log. Environment: ID, RUN_DIR, DATA_DIR, CONFIG_FILE.
set -euo pipefail
pid_file="$RUN_DIR/$ID.pid"
# Only the process started with this node's config file: a pid file can outlive its process.
ours() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "--config $CONFIG_FILE"; }
if [ -s "$pid_file" ]; then
  pid=$(cat "$pid_file")
  if ours "$pid" && kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 300); do
      ours "$pid" || break
      sleep 0.1
    done
    if ours "$pid"; then
      echo "$ID: still running 30 s after SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
fi
rm -rf -- "$DATA_DIR" "$CONFIG_FILE" "$pid_file" "$RUN_DIR/$ID.log"
echo "$ID: stopped"
