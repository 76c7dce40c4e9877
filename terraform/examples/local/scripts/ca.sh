#!/usr/bin/env bash
# The cluster CA, a certificate per node and an admin token, each made only if missing (so a re-apply keeps them).
# Environment: TERN (the binary), CERTS (directory), NODES (node ids, space-separated), TOKEN_FILE.
set -euo pipefail
umask 077
mkdir -p "$CERTS"
[ -e "$CERTS/ca.pem" ] || "$TERN" ca init --dir "$CERTS"
for node in $NODES; do
  [ -e "$CERTS/$node.pem" ] || "$TERN" ca issue --dir "$CERTS" --node "$node"
done
if [ ! -s "$TOKEN_FILE" ]; then
  od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$TOKEN_FILE.new"
  mv "$TOKEN_FILE.new" "$TOKEN_FILE"
fi
echo "certificates for: $NODES (in $CERTS)"
