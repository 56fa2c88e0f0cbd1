#!/usr/bin/env bash
# rtload works end to end against rtd: 50 subscribers, 1 s of publishing, zero loss, over
# WebSocket and over the HTTP broadcast API; and with --reconnect, subscribers dropped by a
# restart of rtd come back and are counted as reconnects. Against a default rtd (scripts/demo's:
# --demo, no --allow-publish), rtload's default publish path (POST /api/broadcast) loses
# nothing, and --publish-via ws stops at once, saying what to change.
set -euo pipefail
rtd=$1 rtload=$2
log=$(mktemp)
pid=
trap 'kill $pid 2>/dev/null || true; rm -f "$log" "$log".*' EXIT

start_rtd() { # [PORT [RTD OPTIONS...]]
  : >"$log"
  local p=${1:-0}
  shift || true
  [ $# -gt 0 ] || set -- --allow-publish
  "$rtd" --host 127.0.0.1 --port "$p" --threads 1 "$@" >"$log" 2>&1 &
  pid=$!
  port=
  for _ in $(seq 100); do
    port=$(grep -o '"port":[0-9]*' "$log" | head -1 | cut -d: -f2 || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "rtd did not start"; cat "$log"; exit 1; }
}

expect() { # FILE PATTERN WHAT
  grep -Eq -- "$2" "$1" || { echo "FAIL $3: $(cat "$1")"; exit 1; }
  echo "ok   $3"
}

start_rtd
timeout 60 "$rtload" --url "ws://127.0.0.1:$port/ws" --clients 50 --publish-rate 50/s --duration 1s \
  --publish-via ws --server-pid "$pid" --json "$log.ws.json" -q
expect "$log.ws.json" '"lost":0' "ws: no loss"
expect "$log.ws.json" '"connected":50' "ws: 50 connected"
expect "$log.ws.json" '"publish_via":"ws"' "ws: publish_via in the report"

timeout 60 "$rtload" --url "ws://127.0.0.1:$port/ws" --clients 50 --publish-rate 50/s --duration 1s \
  --publish-via http --json "$log.http.json" -q
expect "$log.http.json" '"publish_via":"http"' "http: publish_via in the report"
expect "$log.http.json" '"published":50,' "http: 50 broadcasts in 1 s at 50/s"
expect "$log.http.json" '"publish_errors":0' "http: every broadcast answered 200"
expect "$log.http.json" '"delivered":2500,' "http: every broadcast reached all 50"
expect "$log.http.json" '"lost":0' "http: no loss"
expect "$log.http.json" '"p99":' "http: latency measured"

# --reconnect: restart rtd on the same port under 20 holding subscribers
timeout 60 "$rtload" --url "ws://127.0.0.1:$port/ws" --clients 20 --duration 4s --reconnect \
  --json "$log.rc.json" -q &
load=$!
sleep 1.5
kill "$pid"
wait "$pid" 2>/dev/null || true
start_rtd "$port"
wait "$load" || true # exit code: the run saw drops
expect "$log.rc.json" '"reconnects":20,' "reconnect: 20 reconnects counted"
expect "$log.rc.json" '"connected":20,' "reconnect: all 20 connected again at the end"
expect "$log.rc.json" '"disconnects":20,' "reconnect: 20 drops counted"
kill "$pid"
wait "$pid" 2>/dev/null || true

# A default rtd, as scripts/demo starts it: client publish off, demo data on the same channel.
start_rtd 0 --demo --demo-interval 200
timeout 60 "$rtload" --url "ws://127.0.0.1:$port/ws" --clients 100 --publish-rate 100/s --duration 1s \
  --json "$log.demo.json" -q
expect "$log.demo.json" '"publish_via":"http"' "default rtd: rtload publishes over HTTP by default"
expect "$log.demo.json" '"publish_errors":0' "default rtd: no publish errors"
expect "$log.demo.json" '"connected":100,' "default rtd: 100 connected"
expect "$log.demo.json" '"published":100,' "default rtd: 100 broadcasts in 1 s at 100/s"
expect "$log.demo.json" '"lost":0' "default rtd: zero lost"

# --publish-via ws against it: stopped at the first refusal, with what to change
start=$(date +%s)
rc=0
timeout 60 "$rtload" --url "ws://127.0.0.1:$port/ws" --clients 10 --publish-rate 100/s --duration 20s \
  --publish-via ws --json "$log.refused.json" -q >"$log.refused" 2>&1 || rc=$?
elapsed=$(($(date +%s) - start))
[ "$rc" = 2 ] || { echo "FAIL refused ws publish: exit $rc, expected 2: $(cat "$log.refused")"; exit 1; }
[ "$elapsed" -lt 10 ] || { echo "FAIL refused ws publish: took ${elapsed}s of a 20 s run"; exit 1; }
expect "$log.refused" 'refused the first publication' "refused ws publish: says so"
expect "$log.refused" 'publishing from clients is disabled' "refused ws publish: the server's reason"
expect "$log.refused" '--allow-publish' "refused ws publish: names the rtd flag"
expect "$log.refused" '--publish-via http' "refused ws publish: names the rtload alternative"
[ ! -e "$log.refused.json" ] || { echo "FAIL refused ws publish: wrote a report"; exit 1; }
echo "ok   refused ws publish: exit 2 after ${elapsed}s"

# an admin key on the server: the HTTP publisher stops at once and names --api-key
kill "$pid"
wait "$pid" 2>/dev/null || true
start_rtd 0 --admin-key k3y
rc=0
timeout 60 "$rtload" --url "ws://127.0.0.1:$port/ws" --clients 5 --publish-rate 50/s --duration 20s \
  -q >"$log.key" 2>&1 || rc=$?
[ "$rc" = 2 ] || { echo "FAIL admin key: exit $rc, expected 2: $(cat "$log.key")"; exit 1; }
expect "$log.key" '401|403' "admin key: the HTTP status"
expect "$log.key" '--api-key' "admin key: names --api-key"
timeout 60 "$rtload" --url "ws://127.0.0.1:$port/ws" --clients 5 --publish-rate 50/s --duration 1s \
  --api-key k3y --json "$log.key.json" -q
expect "$log.key.json" '"lost":0' "admin key: with --api-key, zero lost"
echo "rtload smoke: ok"
