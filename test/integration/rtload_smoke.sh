#!/usr/bin/env bash
# rtload works end to end against rtd: 50 subscribers, 1 s of publishing, zero loss.
set -euo pipefail
rtd=$1 rtload=$2
log=$(mktemp)
"$rtd" --host 127.0.0.1 --port 0 --threads 1 --allow-publish >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log" "$log.json"' EXIT
for _ in $(seq 100); do
  port=$(grep -o '"port":[0-9]*' "$log" | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "rtd did not start"; cat "$log"; exit 1; }
timeout 60 "$rtload" --url "ws://127.0.0.1:$port/ws" --clients 50 --publish-rate 50/s --duration 1s \
  --server-pid "$pid" --json "$log.json" -q
grep -q '"lost":0' "$log.json"
grep -q '"connected":50' "$log.json"
echo "rtload smoke: ok"
