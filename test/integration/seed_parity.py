#!/usr/bin/python3
# "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md,
# "Seed parity", lists what each does and what rtd answers for it.
"""The seeds' REST routes and variables against the rtd binary, the way the seeds' users call
them (HTTP requests, a Python websockets client):
- seed 004: SERVER_PORT, CLIENT_URL (Origin check), REDIS_HOST (selects the Redis engine: an
  unreachable one turns /api/v1/health into 503 naming it), GET /api/v1/health (503 naming a
  failing data source, 200 otherwise), GET /api/v1/info, GET /api/v1/metrics/{region} (426
  naming the WebSocket events);
- seed 002: WS_METRICS_INTERVAL (the system metrics source at that period), GET /api/v1/metrics
  (200 with the latest metrics, 503 without the source), GET /api/v1/ws/stats;
- seed 003: batch ingest (POST /api/broadcast/{backlog,attendance}/batch and the seed's
  batch-ingest and ingest paths) answering per item, POST /api/alerts/evaluate;
- presence: GET /api/rooms/{room}/presence with the room's read rule (admin key), and the
  `presence` message over WebSocket.
- seed 001: `--profile seed001` (ping 25 s / timeout 60 s, compression, auth required, 100
  connections per organization; explicit flags win; a JWT secret needed);
- seed 000: PORT (wins over SERVER_PORT), REFRESH_INTERVAL; the Copilot metrics preset
  (GITHUB_ORG, GITHUB_API_URL, GITHUB_TOKEN) against a local server playing the GitHub API;
Usage: seed_parity.py PATH_TO_RTD
"""
import asyncio
import collections
import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import websockets

from rtdtest import check, failures, hs256_token, start_rtd

RTD = sys.argv[1]
KEY = "seed-admin-key"


def call(port, method, path, body=None, key=None, headers=None):
    """(status, JSON body, headers) of one request."""
    data = None if body is None else json.dumps(body).encode()
    h = {"Content-Type": "application/json", **(headers or {})}
    if key:
        h["X-API-Key"] = key
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), e.headers


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_env(env, *args):
    """rtd with the seed's environment variables and no --port: (process, port) or (process,
    None) when it exited."""
    full = {k: v for k, v in os.environ.items()
            if k not in ("PORT", "RTD_REDIS_URL", "RTD_ENGINE", "FRONTEND_URL")}
    full.update(env)
    proc = subprocess.Popen([RTD, "--host", "127.0.0.1", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full)
    for line in proc.stdout:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "listening":
            proc.log = collections.deque(maxlen=200)
            threading.Thread(target=lambda: [proc.log.append(l) for l in proc.stdout],
                             daemon=True).start()
            return proc, ev["port"]
    proc.wait(timeout=10)
    return proc, None


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=15) == 0, "rtd exits 0 on SIGTERM")


async def connected(ws):
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if m["type"] == "connected":
            return m


async def subscribe(ws, channel, org=None):
    msg = {"type": "subscribe", "channel": channel}
    if org:
        msg["scope"] = {"org": org}
    await ws.send(json.dumps(msg))
    while json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] != "subscribed":
        pass


async def updates(ws, event, limit):
    """Every `update` of `event` within `limit` seconds, with its arrival time."""
    got = []
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            m = json.loads(await asyncio.wait_for(ws.recv(), max(0.05, end - time.monotonic())))
        except asyncio.TimeoutError:
            break
        if m.get("type") == "update" and m.get("event") == event:
            got.append((time.monotonic(), m))
    return got


def seed004_env_and_health(tmp):
    """SERVER_PORT and CLIENT_URL as seed 004 sets them; a data source that cannot reach its
    API fails /api/v1/health with 503 naming it."""
    port = free_port()
    config = os.path.join(tmp, "dead_source.json")
    with open(config, "w") as f:
        json.dump({"pollers": [{"name": "devops-api", "url": "http://127.0.0.1:1/metrics",
                                "channel": "devops", "interval": 0.2, "retry_initial": 0.2,
                                "retry_max": 0.4, "timeout": 1}]}, f)
    proc, got = start_env({"SERVER_PORT": str(port), "CLIENT_URL": "http://dash.example"},
                          "--config", config)
    check(got == port, f"SERVER_PORT={port}: rtd listens there ({got})")
    if got is None:
        return
    try:
        async def origins():
            ok = refused = False
            try:
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws",
                                              origin="http://dash.example") as ws:
                    ok = (await connected(ws))["type"] == "connected"
            except Exception:
                pass
            try:
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws",
                                              origin="http://evil.example") as ws:
                    await connected(ws)
            except Exception:
                refused = True
            return ok, refused
        ok, refused = asyncio.run(origins())
        check(ok, "CLIENT_URL: its Origin may connect")
        check(refused, "CLIENT_URL: another Origin is refused")
        st, _, h = call(port, "GET", "/api/v1/info", headers={"Origin": "http://dash.example"})
        check(st == 200 and h.get("Access-Control-Allow-Origin") == "http://dash.example",
              "CLIENT_URL: CORS for its Origin on /api/v1/info")

        st, body = None, None
        end = time.monotonic() + 15
        while time.monotonic() < end:
            st, body, _ = call(port, "GET", "/api/v1/health")
            if st == 503:
                break
            time.sleep(0.2)
        check(st == 503 and body["status"] == "error" and "source:devops-api" in body["failing"]
              and body["error"]["code"] == "UNHEALTHY"
              and "source:devops-api" in body["error"]["message"]
              and body["checks"]["source:devops-api"]["status"] == "error"
              and body["checks"]["engine:memory"]["status"] == "ok",
              f"a failing data source: /api/v1/health 503 naming it ({st} {body})")
        st, body, _ = call(port, "GET", "/api/health")
        check(st == 200, "/api/health stays a liveness probe (200)")
        st, body, _ = call(port, "GET", "/api/v1/info")
        check(st == 200 and body["sources"] == ["devops-api"] and body["engine"] == "memory"
              and body["features"]["origin_check"] is True and "version" in body
              and body["transports"]["websocket"] == "/ws", "GET /api/v1/info")
    finally:
        stop(proc)


def seed000_env(tmp):
    """PORT and SERVER_PORT both set: PORT wins (not a duplicate-option error);
    REFRESH_INTERVAL is the default interval of a source that sets none."""
    p1, p2 = free_port(), free_port()
    config = os.path.join(tmp, "no_interval.json")
    with open(config, "w") as f:
        json.dump({"pollers": [{"name": "api", "url": "http://127.0.0.1:1/x",
                                "channel": "dashboard"}]}, f)
    proc, got = start_env({"PORT": str(p1), "SERVER_PORT": str(p2), "REFRESH_INTERVAL": "7"},
                          "--config", config)
    check(got == p1, f"PORT and SERVER_PORT: PORT wins ({got})")
    if got is None:
        return
    try:
        st, body, _ = call(got, "GET", "/api/stats")
        src = body["stats"]["sources"]
        check(st == 200 and src[0]["refresh_interval_ms"] == 7000,
              "REFRESH_INTERVAL=7: the source's interval is 7 s")
    finally:
        stop(proc)


def local_api(answer):
    """A local HTTP server playing a seed's upstream API: `answer(handler)` gives (status, body
    object) for each GET. Returns the server (its port: server_port; stop: shutdown())."""
    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, obj = answer(self)
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    return api


def seed000_cache_ttl(tmp):
    """CACHE_TTL: a source's value younger than it is served instead of a fetch. An on-demand
    source (seed 000's API answers cached for 30 s) goes idle when its last subscriber leaves;
    the next subscriber within CACHE_TTL gets the cached value and the API is not asked again;
    after CACHE_TTL it is."""
    hits = []

    def usage(_):
        hits.append(time.monotonic())
        return 200, {"active_users": len(hits)}

    api = local_api(usage)
    config = os.path.join(tmp, "cache_ttl.json")
    with open(config, "w") as f:
        json.dump({"pollers": [{"name": "api", "url": f"http://127.0.0.1:{api.server_port}/m",
                                "channel": "usage", "on_demand": True, "linger": 0.2}]}, f)
    proc, port = start_env({"REFRESH_INTERVAL": "60", "CACHE_TTL": "2.5"}, "--port", "0",
                           "--config", config)
    if port is None:
        check(False, "rtd with CACHE_TTL starts")
        api.shutdown()
        return
    try:
        async def watch():
            """One subscriber for a moment: the value it got on subscribe."""
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as c:
                await connected(c)
                await c.send(json.dumps({"type": "subscribe", "channel": "usage"}))
                end = time.monotonic() + 5
                while time.monotonic() < end:
                    m = json.loads(await asyncio.wait_for(c.recv(), 5))
                    if m["type"] in ("initial", "update"):
                        return m["data"]
            return None

        def source():
            st, body, _ = call(port, "GET", "/api/stats")
            return body["stats"]["sources"][0]

        first = asyncio.run(watch())
        check(first == {"active_users": 1} and len(hits) == 1, f"the first subscriber: one fetch ({first})")
        check(source()["cache_ttl_ms"] == 2500, "CACHE_TTL=2.5: the source's cache lifetime")
        time.sleep(0.6)  # past the linger: the source is idle
        again = asyncio.run(watch())
        time.sleep(0.3)
        check(again == {"active_users": 1} and len(hits) == 1 and source()["cache_hits"] >= 1,
              f"a subscriber within CACHE_TTL: the cached value, no fetch ({len(hits)} fetches)")
        time.sleep(2.5)
        later = asyncio.run(watch())
        deadline = time.monotonic() + 3
        while later != {"active_users": 2} and time.monotonic() < deadline:
            later = asyncio.run(watch())
        check(len(hits) == 2 and later == {"active_users": 2},
              f"after CACHE_TTL: fetched again ({len(hits)} fetches, {later})")
    finally:
        stop(proc)
        api.shutdown()


def seed004_changed_fields(tmp):
    """Seed 004's poller change detection names what changed: a poller with `changed_fields`
    pushes the list in its complete data, and /api/stats names the last change's fields."""
    state = {"body": {"region": "us-east", "status": "ok", "latency": {"p50": 10, "p99": 30}}}
    api = local_api(lambda _: (200, state["body"]))
    config = os.path.join(tmp, "changed_fields.json")
    with open(config, "w") as f:
        json.dump({"pollers": [{"name": "regions", "url": f"http://127.0.0.1:{api.server_port}/m",
                                "channel": "regions", "interval": 0.2, "changed_fields": True},
                               {"name": "kpis", "url": f"http://127.0.0.1:{api.server_port}/k",
                                "channel": "kpi", "scope": {"org": "org_123"}, "interval": 3600}]}, f)
    proc, port = start_env({}, "--port", "0", "--config", config)
    if port is None:
        check(False, "rtd with a changed_fields poller starts")
        api.shutdown()
        return
    try:
        async def ws():
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as c:
                await connected(c)
                await c.send(json.dumps({"type": "subscribe", "channel": "regions"}))
                first = None
                end = time.monotonic() + 5
                while time.monotonic() < end and first is None:
                    m = json.loads(await asyncio.wait_for(c.recv(), 5))
                    if m["type"] in ("initial", "update"):
                        first = m["data"]
                check(first is not None and "changed_fields" not in first,
                      f"the first value names no change ({first})")
                state["body"] = {"region": "us-east", "status": "degraded",
                                 "latency": {"p50": 11, "p99": 30}}
                changed = None
                end = time.monotonic() + 5
                while time.monotonic() < end and changed is None:
                    m = json.loads(await asyncio.wait_for(c.recv(), 5))
                    if m["type"] == "update":
                        changed = m["data"]
                check(changed is not None and changed.get("changed_fields") == ["/status", "/latency/p50"]
                      and changed["status"] == "degraded",
                      f"a change at the API: pushed with the fields that changed ({changed})")
        asyncio.run(ws())
        st, body, _ = call(port, "GET", "/api/stats")
        src = body["stats"]["sources"][0]
        check(src["last_changed_fields"] == ["/status", "/latency/p50"] and src["last_change_at"],
              f"/api/stats names the last change's fields ({src.get('last_changed_fields')})")
        # Seed 003's manual KPI computation: the kpi sources of the scope fetch now.
        def kpi_fetches():
            return next(s["fetches"] for s in call(port, "GET", "/api/stats")[1]["stats"]["sources"]
                        if s["name"] == "kpis")
        before = kpi_fetches()
        st, body, _ = call(port, "POST", "/api/intraday/kpi/compute",
                           {"organization_id": "org_123", "queue_name": "support",
                            "department_id": "d1", "as_of_time": "2026-01-31T10:00:00Z"})
        deadline = time.monotonic() + 3
        while kpi_fetches() == before and time.monotonic() < deadline:
            time.sleep(0.05)
        check(st == 202 and kpi_fetches() == before + 1,
              f"POST /api/intraday/kpi/compute: 202, the scope's kpi source fetches ({st} {body})")
        st, body, _ = call(port, "POST", "/api/intraday/kpi/compute", {"organization_id": "org_9"})
        check(st == 404 and body["error"]["code"] == "ROOM_NOT_FOUND",
              f"... 404 ROOM_NOT_FOUND for a scope without a kpi source ({st})")
        st, body, _ = call(port, "POST", "/api/intraday/kpi/compute", {"organization_id": "bad org!"})
        check(st == 400, f"... 400 for an invalid scope ({st})")
    finally:
        stop(proc)
        api.shutdown()


def copilot_day(date, active, suggested, accepted):
    return {"date": date, "total_active_users": active, "total_engaged_users": active - 1,
            "copilot_ide_code_completions": {"editors": [{"name": "vscode", "models": [
                {"name": "default", "languages": [
                    {"name": "python", "total_code_suggestions": suggested,
                     "total_code_acceptances": accepted}]}]}]},
            "copilot_dotcom_chat": {"models": [{"name": "default", "total_chats": 7}]}}


def seed000_copilot():
    """GITHUB_ORG, GITHUB_API_URL, GITHUB_TOKEN: the Copilot metrics of a local server playing
    the GitHub API, polled onto channel `dashboard`: the KPIs of the latest day first, the days
    after, /api/kpis and /api/dashboard for it, a change of the API's answer pushed."""
    state = {"days": [copilot_day("2026-12-04", 10, 100, 20),
                      copilot_day("2026-12-05", 24, 400, 100)], "auth": [], "paths": []}

    def github(req):
        state["auth"].append((req.headers.get("Authorization"), req.headers.get("Accept"),
                              req.headers.get("X-GitHub-Api-Version")))
        state["paths"].append(req.path)
        ok = req.path == "/api/v3/orgs/acme-org/copilot/metrics"
        return 200 if ok else 404, state["days"]

    api = local_api(github)
    proc, port = start_env({"GITHUB_ORG": "acme-org", "GITHUB_TOKEN": "ghp_test123",
                            "GITHUB_API_URL": f"http://127.0.0.1:{api.server_port}/api/v3",
                            "REFRESH_INTERVAL": "0.3", "CACHE_TTL": "0.3"}, "--port", "0")
    if port is None:
        check(False, "rtd with GITHUB_ORG starts")
        api.shutdown()
        return
    try:
        async def ws():
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as c:
                await connected(c)
                await c.send(json.dumps({"type": "subscribe", "channel": "dashboard"}))
                phases = []
                end = time.monotonic() + 5
                while time.monotonic() < end and len(phases) < 2:
                    m = json.loads(await asyncio.wait_for(c.recv(), 5))
                    if m["type"] in ("initial", "update") and m.get("phase"):
                        phases.append(m)
                check([m["phase"] for m in phases] == ["kpis", "complete"]
                      and phases[0]["data"]["total_active_users"] == 24
                      and phases[0]["data"]["acceptance_rate"] == 25.0
                      and len(phases[1]["data"]) == 2,
                      "subscribe to dashboard: the latest day's KPIs, then the days")
                state["days"].append(copilot_day("2026-12-06", 30, 200, 100))
                kpis = None
                end = time.monotonic() + 5
                while time.monotonic() < end and kpis is None:
                    m = json.loads(await asyncio.wait_for(c.recv(), 5))
                    if m["type"] == "update" and m.get("phase") == "kpis":
                        kpis = m["data"]
                check(kpis is not None and kpis["date"] == "2026-12-06"
                      and kpis["acceptance_rate"] == 50.0
                      and kpis["changes"].get("total_active_users_change") == 6,
                      f"a new day at the API: KPIs pushed with changes ({kpis})")
        asyncio.run(ws())
        st, body, _ = call(port, "GET", "/api/kpis?channel=dashboard")
        check(st == 200 and body["data"]["date"] == "2026-12-06", "GET /api/kpis?channel=dashboard")
        st, body, _ = call(port, "GET", "/api/kpis")
        check(st == 200 and body["data"]["date"] == "2026-12-06",
              "GET /api/kpis without a channel answers for `dashboard`, as seed 000's")
        st, body, _ = call(port, "GET", "/api/dashboard?channel=dashboard")
        check(st == 200 and len(body["data"]) == 3, "GET /api/dashboard?channel=dashboard: the days")
        check(state["auth"] and all(a == ("Bearer ghp_test123", "application/vnd.github+json",
                                          "2022-11-28") for a in state["auth"])
              and set(state["paths"]) == {"/api/v3/orgs/acme-org/copilot/metrics"},
              "the poller asks GITHUB_API_URL/orgs/GITHUB_ORG/copilot/metrics with GITHUB_TOKEN")
        st, body, _ = call(port, "GET", "/api/v1/health")
        check(st == 200 and body["checks"]["source:copilot"]["status"] == "ok",
              "the Copilot source in /api/v1/health")
    finally:
        stop(proc)
        api.shutdown()


def seed004_redis_host():
    """REDIS_HOST selects the Redis engine; an unreachable Redis fails the deep health check."""
    dead = free_port()
    proc, port = start_env({"REDIS_HOST": f"redis://127.0.0.1:{dead}"}, "--port", "0")
    if port is None:
        err = proc.stderr.read()
        if "no Redis engine" in err:
            print("skip REDIS_HOST: this rtd has no Redis engine")
            return
        check(False, f"rtd with REDIS_HOST starts ({err.strip()})")
        return
    try:
        st, body, _ = call(port, "GET", "/api/v1/health")
        check(st == 503 and body["failing"] == ["engine:redis"]
              and body["checks"]["engine:redis"]["status"] == "error",
              f"REDIS_HOST unreachable: /api/v1/health 503 naming engine:redis ({st})")
        st, body, _ = call(port, "GET", "/api/v1/info")
        check(st == 200 and body["engine"] == "redis", "REDIS_HOST selected the Redis engine")
    finally:
        stop(proc)


def seed002_metrics():
    """WS_METRICS_INTERVAL alone runs the system metrics at that period; /api/v1/metrics and
    /api/v1/ws/stats answer for it."""
    proc, port = start_env({"WS_METRICS_INTERVAL": "300"}, "--port", "0")
    if port is None:
        check(False, "rtd with WS_METRICS_INTERVAL starts")
        return
    try:
        st, body, _ = call(port, "GET", "/api/v1/metrics")
        data = (body or {}).get("data", {})
        check(st == 200 and body["success"] and "cpu_usage" in data and "memory_total" in data
              and "uptime" in data, f"GET /api/v1/metrics: the latest system metrics ({st})")

        async def ws():
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as c:
                hello = await connected(c)
                await subscribe(c, "metrics")
                st, stats, _ = call(port, "GET", "/api/v1/ws/stats")
                me = [x for x in stats["clients"] if x["client_id"] == hello["clientId"]]
                check(st == 200 and stats["connected_clients"] == 1 and len(me) == 1
                      and "metrics" in me[0]["subscribed_channels"]
                      and stats["channels"].get("metrics") == 1
                      and stats["metrics_interval_ms"] == 300,
                      f"GET /api/v1/ws/stats: the client, its channel, the interval ({stats})")
                got = await updates(c, "metrics:update", 2.0)
                # `kpis` and `complete` phases: count the complete ones.
                full = [t for t, m in got if m.get("phase") != "kpis"]
                check(len(full) >= 3, f"WS_METRICS_INTERVAL=300: {len(full)} metrics updates in 2 s")
        asyncio.run(ws())
    finally:
        stop(proc)
    proc, port = start_rtd(RTD)
    try:
        st, body, _ = call(port, "GET", "/api/v1/metrics")
        check(st == 503 and body["error"]["code"] == "METRICS_UNAVAILABLE",
              "no system metrics source: /api/v1/metrics 503 METRICS_UNAVAILABLE")
        st, body, _ = call(port, "GET", "/api/v1/health")
        check(st == 200 and body["status"] == "ok" and body["failing"] == [],
              "healthy rtd: /api/v1/health 200")
        st, body, h = call(port, "GET", "/api/v1/metrics/us-east")
        check(st == 426 and h.get("Upgrade") == "websocket"
              and body["error"]["code"] == "UPGRADE_REQUIRED"
              and body["events"]["get"] == "metrics:get"
              and body["events"]["subscribe"] == "metrics:subscribe"
              and body["data"] == {"source": "us-east"} and body["websocket"]["path"] == "/ws",
              "GET /api/v1/metrics/us-east: 426 naming metrics:get and metrics:subscribe")
        st, body, _ = call(port, "POST", "/api/alerts/evaluate")
        check(st == 404 and body["error"]["code"] == "NOT_FOUND",
              "POST /api/alerts/evaluate without rules: 404")
    finally:
        stop(proc)


BACKLOG = {"organization_id": "acme", "department_id": "support", "queue_name": "email",
           "total_items": 12, "avg_wait_time_minutes": 3.5, "items_over_sla": 2,
           "sla_compliance_percentage": 83.3}
ATTENDANCE = {"organization_id": "acme", "department_id": "support", "scheduled_count": 40,
              "present_count": 36, "absent_count": 4, "late_count": 1, "attendance_rate": 90}
KPI = {"organization_id": "acme", "department_id": "support", "queue_name": "phone",
       "sla_risk": {"current": 0.5}, "health_score": 80}


async def seed003_batch(port):
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await connected(ws)
        await subscribe(ws, "backlog", "acme")
        await subscribe(ws, "attendance", "acme")
        items = [BACKLOG, dict(BACKLOG, items_over_sla=99), dict(BACKLOG, queue_name="chat")]
        st, body, _ = call(port, "POST", "/api/broadcast/backlog/batch", items, key=KEY)
        r = body["results"]
        check(st == 207 and body["total"] == 3 and body["published"] == 2 and body["failed"] == 1
              and [x["index"] for x in r] == [0, 1, 2]
              and [x["success"] for x in r] == [True, False, True]
              and r[1]["status"] == 400 and r[1]["error"]["code"] == "INVALID_MESSAGE"
              and r[1]["error"]["field"] == "items_over_sla"
              and r[0]["topic"] == "backlog:org:acme:dept:support:queue:email"
              and r[2]["topic"] == "backlog:org:acme:dept:support:queue:chat",
              f"batch: 207, one result per item, the bad one named ({st})")
        got = await updates(ws, "backlog:update", 1.0)
        check(sorted(m["data"]["queue_name"] for _, m in got) == ["chat", "email"],
              "batch: the valid items reached the subscriber, the invalid one did not")
        check(all(m["data"]["backlog_trend"] == "stable" for _, m in got),
              "a scope's first backlog without backlog_trend: stable")
        st, body, _ = call(port, "POST", "/api/schedulesbacklog/batch-ingest",
                           {"items": [BACKLOG]}, key=KEY)
        check(st == 200 and body["success"] and body["published"] == 1,
              "POST /api/schedulesbacklog/batch-ingest ({items: [...]}) -> 200")
        st, body, _ = call(port, "POST", "/api/intraday/attendance/batch-ingest",
                           [ATTENDANCE, dict(ATTENDANCE, department_id="sales")], key=KEY)
        check(st == 200 and body["published"] == 2
              and body["results"][1]["topic"] == "attendance:org:acme:dept:sales",
              "POST /api/intraday/attendance/batch-ingest -> 200")
        st, body, _ = call(port, "POST", "/api/intraday/attendance/ingest", ATTENDANCE, key=KEY)
        check(st == 200 and body["topic"] == "attendance:org:acme:dept:support",
              "POST /api/intraday/attendance/ingest: the attendance shortcut")
        st, body, _ = call(port, "POST", "/api/schedulesbacklog/ingest",
                           dict(BACKLOG, total_items=-1), key=KEY)
        check(st == 400 and body["error"]["field"] == "total_items",
              "POST /api/schedulesbacklog/ingest validates like /api/broadcast/backlog")
        got = await updates(ws, "attendance:update", 1.0)
        check(len(got) == 3, f"attendance batch and ingest delivered ({len(got)})")
        # The trend against the scope's previous snapshot (12 items) when the producer leaves
        # it out; a given one is kept.
        call(port, "POST", "/api/schedulesbacklog/ingest", dict(BACKLOG, total_items=20), key=KEY)
        call(port, "POST", "/api/schedulesbacklog/ingest", dict(BACKLOG, total_items=10), key=KEY)
        call(port, "POST", "/api/schedulesbacklog/ingest",
             dict(BACKLOG, total_items=30, backlog_trend="stable"), key=KEY)
        got = await updates(ws, "backlog:update", 1.0)
        check([m["data"]["backlog_trend"] for _, m in got] == ["growing", "decreasing", "stable"],
              f"backlog_trend computed from the previous snapshot ({[m['data'].get('backlog_trend') for _, m in got]})")
        st, body, _ = call(port, "POST", "/api/broadcast/attendance/batch",
                           [dict(ATTENDANCE, late_count="x")], key=KEY)
        check(st == 400 and body["published"] == 0 and body["results"][0]["error"]["field"]
              == "late_count", "a batch without a valid item -> 400 with its results")
        st, body, _ = call(port, "POST", "/api/broadcast/backlog/batch", BACKLOG, key=KEY)
        check(st == 400 and body["error"]["code"] == "INVALID_MESSAGE",
              "a batch that is not an array -> 400")
        st, body, _ = call(port, "POST", "/api/broadcast/backlog/batch", [BACKLOG])
        check(st == 401, "batch without the admin key -> 401")


async def seed003_evaluate(port):
    st, _, _ = call(port, "POST", "/api/broadcast/kpi", KPI, key=KEY)
    check(st == 200, "hot KPI published")
    st, body, _ = call(port, "POST", "/api/alerts/evaluate", key=KEY)
    check(st == 200 and len(body["raised"]) == 1 and body["raised"][0]["rule_id"] == "sla-risk"
          and body["raised"][0]["current_value"] == 0.5 and body["resolved"] == [],
          f"POST /api/alerts/evaluate raises the breaching rule's alert ({body})")
    aid = body["raised"][0]["alert_id"] if body.get("raised") else None
    st, body, _ = call(port, "POST", "/api/alerts/evaluate", key=KEY)
    check(st == 200 and body["raised"] == [] and body["resolved"] == [],
          "evaluating again raises nothing new")
    call(port, "POST", "/api/broadcast/kpi", dict(KPI, sla_risk={"current": 0.1}), key=KEY)
    st, body, _ = call(port, "GET",
                       "/api/dashboard?channel=kpi&org=acme&dept=support&queue=phone", key=KEY)
    ch = (body or {}).get("data", {}).get("changes", {})
    check(st == 200 and abs(ch.get("sla_risk_change", 0) + 0.4) < 1e-9
          and ch.get("health_score_change") == 0,
          f"an ingested KPI carries changes against the previous one ({ch})")
    st, body, _ = call(port, "POST", "/api/alerts/evaluate", key=KEY)
    check(st == 200 and [a["alert_id"] for a in body["resolved"]] == [aid]
          and body["resolved"][0]["status"] == "resolved",
          "back inside: POST /api/alerts/evaluate resolves it")


async def presence(port):
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as a, \
            websockets.connect(f"ws://127.0.0.1:{port}/ws") as b:
        ha, hb = await connected(a), await connected(b)
        await subscribe(a, "kpi", "acme")
        await subscribe(b, "kpi", "globex")
        st, body, _ = call(port, "GET", "/api/rooms/kpi:org:acme/presence", key=KEY)
        who = [p["client_id"] for p in body.get("presence", [])]
        check(st == 200 and who == [ha["clientId"]] and body["room"] == "kpi:org:acme"
              and body["presence"][0]["transport"] == "websocket"
              and "connected_at" in body["presence"][0],
              f"GET /api/rooms/kpi:org:acme/presence lists its subscriber only ({body})")
        st, body, _ = call(port, "GET", "/api/rooms/kpi:org:acme/presence")
        check(st == 401, "presence without the admin key or a token -> 401")
        st, body, _ = call(port, "GET", "/api/rooms/kpi:org:/presence", key=KEY)
        check(st == 400, "presence of an invalid room -> 400")
        # The same over a connection: the `presence` message (docs/protocol.md).
        await b.send(json.dumps({"type": "presence", "id": "pr", "channel": "kpi", "scope": {"org": "acme"}}))
        await b.send(json.dumps({"type": "presence", "id": "bad", "channel": "kpi", "scope": {"org": "a b"}}))
        answers = {}
        end = time.monotonic() + 5
        while time.monotonic() < end and len(answers) < 2:
            m = json.loads(await asyncio.wait_for(b.recv(), 5))
            if m.get("id") in ("pr", "bad"):
                answers[m["id"]] = m
        pr, bad = answers.get("pr", {}), answers.get("bad", {})
        check(pr.get("type") == "presence" and pr.get("topic") == "kpi:org:acme" and pr.get("count") == 1
              and [p["client_id"] for p in pr.get("members", [])] == [ha["clientId"]],
              f"the presence message lists the room's subscriber ({pr})")
        check(bad.get("type") == "error" and bad.get("code") == "INVALID_MESSAGE",
              f"presence of an invalid room over WebSocket: INVALID_MESSAGE ({bad})")
        # join and leave on a channel rtd was told to announce (--join-leave room).
        await subscribe(a, "room", "acme")

        async def membership(ws, want, limit=3):
            end = time.monotonic() + limit
            while time.monotonic() < end:
                try:
                    m = json.loads(await asyncio.wait_for(ws.recv(), max(0.05, end - time.monotonic())))
                except asyncio.TimeoutError:
                    return None
                if m.get("type") in ("join", "leave"):
                    return m if m["type"] == want else {"unexpected": m}
            return None

        own = await membership(a, "join")
        check(own and own["client"]["client_id"] == ha["clientId"], f"join: the subscriber itself is told too ({own})")
        await subscribe(a, "kpi", "initech")  # kpi is not announced
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as c:
            hc = await connected(c)
            await subscribe(c, "room", "acme")
            j = await membership(a, "join")
            check(j and j.get("topic") == "room:org:acme" and j["client"]["client_id"] == hc["clientId"],
                  f"join: a subscriber of room:org:acme is told who joined ({j})")
            await c.send(json.dumps({"type": "unsubscribe", "channel": "room", "scope": {"org": "acme"}}))
            lv = await membership(a, "leave")
            check(lv and lv["client"]["client_id"] == hc["clientId"], f"leave on unsubscribe ({lv})")
            await subscribe(c, "kpi", "initech")
            none = await membership(a, "join", 0.5)
            check(none is None, f"a channel not announced: no join ({none})")
            await subscribe(c, "room", "acme")
            await membership(a, "join")
        lv = await membership(a, "leave")
        check(lv and lv["client"]["client_id"] == hc["clientId"], f"leave when the connection ends ({lv})")


def seed003_and_presence(tmp):
    config = os.path.join(tmp, "rules.json")
    # A long interval: only POST /api/alerts/evaluate evaluates during the test.
    with open(config, "w") as f:
        json.dump({"alerts": {"interval": 3600, "rules": [
            {"id": "sla-risk", "channel": "kpi", "scope": {"org": "acme"},
             "field": "/sla_risk/current", "op": ">", "threshold": 0.3, "for": 1,
             "severity": "high"}]}}, f)
    proc, port = start_rtd(RTD, "--config", config, "--admin-key", KEY, "--join-leave", "room")
    try:
        asyncio.run(seed003_batch(port))
        asyncio.run(seed003_evaluate(port))
        asyncio.run(presence(port))
    finally:
        stop(proc)


def seed001_profile():
    """`rtd --profile seed001`: seed 001's limits and timings in one switch."""
    secret = "seed001-secret"
    p = subprocess.run([RTD, "--port", "0", "--profile", "seed001"], capture_output=True,
                       text=True, timeout=20, env={k: v for k, v in os.environ.items()
                                                   if k != "RTD_JWT_SECRET"})
    check(p.returncode == 2 and "--jwt-secret" in p.stderr,
          f"--profile seed001 requires a JWT secret, and says so ({p.stderr.strip()[:80]})")
    p = subprocess.run([RTD, "--port", "0", "--profile", "nosuch"], capture_output=True,
                       text=True, timeout=20)
    check(p.returncode == 2 and "unknown --profile 'nosuch'" in p.stderr, "an unknown profile is refused")

    proc, port = start_env({"RTD_JWT_SECRET": secret}, "--port", "0", "--profile", "seed001")
    token = hs256_token(secret, {"sub": "u1", "org": "acme", "exp": int(time.time()) + 600})

    async def run():
        url = f"ws://127.0.0.1:{port}/ws"
        async with websockets.connect(url) as ws:
            hello = await connected(ws)
            check(hello["heartbeatInterval"] == 25000, "seed001: heartbeat (ping) every 25 s")
            await ws.send(json.dumps({"type": "subscribe", "channel": "kpi", "scope": {"org": "acme"}}))
            m = json.loads(await asyncio.wait_for(ws.recv(), 5))
            check(m["type"] == "error" and m["code"] == "UNAUTHORIZED",
                  "seed001: authentication required")
        async with websockets.connect(f"{url}?token={token}", compression="deflate") as ws:
            await connected(ws)
            check(any("permessage-deflate" in str(e.name) for e in ws.extensions),
                  "seed001: permessage-deflate negotiated")
        held = []
        try:
            for _ in range(100):
                ws = await websockets.connect(f"{url}?token={token}")
                await connected(ws)
                held.append(ws)
            refused = ""
            try:
                ws = await websockets.connect(f"{url}?token={token}")
                held.append(ws)
                while True:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if m.get("type") == "error":
                        refused = m["code"]
                        break
            except websockets.ConnectionClosed as e:
                refused = refused or f"closed {e.code}"
            check(refused == "CONNECTION_LIMIT",
                  f"seed001: the 101st connection of an organization is refused ({refused})")
        finally:
            for ws in held:
                await ws.close()

    try:
        asyncio.run(run())
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/socket.io/?EIO=4&transport=polling")
        body = c.getresponse().read().decode()
        opened = json.loads(body[1:]) if body.startswith("0{") else {}
        check(opened.get("pingInterval") == 25000 and opened.get("pingTimeout") == 60000,
              f"seed001: Socket.IO pingInterval 25 s, pingTimeout 60 s ({body[:80]})")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/api/v1/info")
        limits = json.loads(c.getresponse().read()).get("limits", {})
        check(limits.get("room_max_size") == 1000 and limits.get("max_connections") == 1000,
              f"seed001: 1000 subscribers per room, 1000 connections ({limits})")
    finally:
        stop(proc)

    proc, port = start_env({"RTD_JWT_SECRET": secret}, "--port", "0", "--profile", "seed001",
                           "--heartbeat-interval", "10")

    async def explicit():
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
            return (await connected(ws))["heartbeatInterval"]
    try:
        check(asyncio.run(explicit()) == 10000, "a flag given explicitly wins over the profile")
    finally:
        stop(proc)


def main():
    tmp = tempfile.mkdtemp(prefix="rtd_seeds_")
    seed000_env(tmp)
    seed000_cache_ttl(tmp)
    seed004_changed_fields(tmp)
    seed000_copilot()
    seed001_profile()
    seed004_env_and_health(tmp)
    seed004_redis_host()
    seed002_metrics()
    seed003_and_presence(tmp)
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all passed")


main()
