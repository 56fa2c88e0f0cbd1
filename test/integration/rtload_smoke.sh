#!/usr/bin/env bash
# rtload works end to end against rtd: 50 subscribers, 1 s of publishing, zero loss, over
# WebSocket and over the HTTP broadcast API; and with --reconnect, subscribers dropped by a
# restart of rtd come back and are counted as reconnects.
set -euo pipefail
rtd=$1 rtload=$2
log=$(mktemp)
pid=
trap 'kill $pid 2>/dev/null || true; rm -f "$log" "$log".*' EXIT

start_rtd() { # [PORT]
  : >"$log"
  "$rtd" --host 127.0.0.1 --port "${1:-0}" --threads 1 --allow-publish >"$log" 2>&1 &
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
  grep -Eq "$2" "$1" || { echo "FAIL $3: $(cat "$1")"; exit 1; }
  echo "ok   $3"
}

start_rtd
timeout 60 "$rtload" --url "ws://127.0.0.1:$port/ws" --clients 50 --publish-rate 50/s --duration 1s \
  --server-pid "$pid" --json "$log.ws.json" -q
expect "$log.ws.json" '"lost":0' "ws: no loss"
expect "$log.ws.json" '"connected":50' "ws: 50 connected"
expect "$log.ws.json" '"publish_via":"ws"' "ws: publish_via in the report"

timeout 60 "$rtload" --url "ws://127.0.0.1:$port/ws" --clients 50 --publish-rate 50/s --duration 1s \
  --publish-via http --json "$log.http.json" -q
expect "$log.http.json" '"publish_via":"http"' "http: publish_via in the report"
expect "$log.http.json" '"published":(49|50),' "http: 49-50 broadcasts in 1 s at 50/s"
expect "$log.http.json" '"publish_errors":0' "http: every broadcast answered 200"
expect "$log.http.json" '"delivered":(2450|2500),' "http: every broadcast reached all 50"
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
echo "rtload smoke: ok"
