#!/usr/bin/python3
# "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md,
# "Seed parity", lists what each does and what rtd answers for it.
"""Seed 003's ingest (docs/protocol.md, "Ingest (seed 003)" and "Alerts") end to end against
the rtd binary: schema validation of
POST /api/broadcast/{kpi,backlog,attendance,alert} and of the generic broadcast's seed 003
events, with a WebSocket subscriber (Python websockets) that must see the valid payloads and
nothing of the refused ones; the alert lifecycle over REST and WebSocket; escalation of an alert
left pending (its own escalate_after, the server's default, none once acknowledged); an alert
rule from the config file (0.2 s interval) firing and resolving; every `rtctl alerts` command;
invalid rule settings stopping rtd.
Usage: rtd_ingest_alerts.py PATH_TO_RTD PATH_TO_RTCTL
"""
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import websockets

from rtdtest import check, failures, start_rtd

RTD, RTCTL = sys.argv[1], sys.argv[2]


def call(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


async def next_update(ws, limit=5.0):
    """The next `update` message, or None when none comes within `limit` seconds."""
    try:
        while True:
            m = json.loads(await asyncio.wait_for(ws.recv(), limit))
            if m["type"] == "update":
                return m
    except asyncio.TimeoutError:
        return None


async def subscribe(ws, channel, org):
    await ws.send(json.dumps({"type": "subscribe", "channel": channel, "scope": {"org": org}}))
    while json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] != "subscribed":
        pass


KPI = {"organization_id": "acme", "department_id": "support", "queue_name": "email",
       "timestamp": "2026-01-31T10:00:00Z", "utilization": {"current_utilization": 71.5},
       "headcount_gap": {"gap": -2}, "sla_risk": {"current": 0.2}, "health_score": 85}
BACKLOG = {"organization_id": "acme", "department_id": "support", "queue_name": "email",
           "total_items": 12, "avg_wait_time_minutes": 3.5, "items_over_sla": 2,
           "sla_compliance_percentage": 83.3, "backlog_trend": "growing"}
ATTENDANCE = {"organization_id": "acme", "department_id": "support", "scheduled_count": 40,
              "present_count": 36, "absent_count": 4, "late_count": 1, "attendance_rate": 90,
              "recent_checkins": [{"employee_id": "e1", "employee_name": "Ann",
                                   "checked_in_at": "2026-01-31T08:59:00Z", "status": "on_time"}]}


async def ingest(port):
    """Every shortcut: a valid payload reaches the subscriber; each kind of bad field gets a
    400 naming the field, and nothing reaches the subscriber."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await json_first(ws)
        for ch in ("kpi", "backlog", "attendance"):
            await subscribe(ws, ch, "acme")
        for ch, body in (("kpi", KPI), ("backlog", BACKLOG), ("attendance", ATTENDANCE)):
            st, ans = call(port, "POST", f"/api/broadcast/{ch}", body)
            check(st == 200 and ans["success"], f"valid {ch} payload accepted")
            u = await next_update(ws)
            check(u is not None and u["event"] == f"{ch}:update" and u["channel"] == ch
                  and u["data"]["organization_id"] == "acme", f"{ch}:update delivered")
            want = f"{ch}:org:acme:dept:support" + (":queue:email" if ch != "attendance" else "")
            check(ans["topic"] == want and u["topic"] == want, f"{ch} published at the payload's scope")
        cases = [
            ("kpi", dict(KPI, health_score=140), "health_score", "from 0 to 100"),
            ("kpi", {k: v for k, v in KPI.items() if k != "organization_id"}, "organization_id",
             "is required"),
            ("kpi", dict(KPI, timestamp="31/01/2026"), "timestamp", "ISO 8601"),
            ("kpi", dict(KPI, utilization="busy"), "utilization", "a number or an object"),
            ("kpi", {k: v for k, v in KPI.items() if k != "department_id"}, "department_id",
             "when queue_name is given"),
            ("backlog", dict(BACKLOG, backlog_trend="up"), "backlog_trend", '"growing"'),
            ("backlog", dict(BACKLOG, total_items=-3), "total_items", "integer of at least 0"),
            ("backlog", dict(BACKLOG, items_over_sla=99), "items_over_sla",
             "must not exceed total_items"),
            ("attendance", dict(ATTENDANCE, late_count="one"), "late_count", "integer"),
            ("attendance", dict(ATTENDANCE, recent_checkins=[{"employee_id": "e1"}]),
             "recent_checkins[0].employee_name", "is required"),
            ("alert", {"organization_id": "acme", "severity": "urgent", "message": "m"},
             "severity", '"critical"'),
            ("alert", {"organization_id": "acme", "severity": "high"}, "message", "is required"),
        ]
        for ch, body, field, words in cases:
            st, ans = call(port, "POST", f"/api/broadcast/{ch}", body)
            err = (ans or {}).get("error", {})
            check(st == 400 and err.get("code") == "INVALID_MESSAGE" and err.get("field") == field
                  and words in err.get("message", "") and err["message"].startswith(field + ":"),
                  f"{ch}: bad {field} -> 400 naming it ({err.get('message')})")
        st, ans = call(port, "POST", "/api/broadcast/kpi", [1, 2])
        check(st == 400 and ans["error"]["code"] == "INVALID_MESSAGE", "non-object body -> 400")
        # the generic route: seed 003 events are validated, the scope comes from the target
        st, ans = call(port, "POST", "/api/broadcast",
                       {"event": "backlog:update", "target": {"organization_id": "acme"},
                        "data": dict(BACKLOG, sla_compliance_percentage=101)})
        check(st == 400 and ans["error"]["field"] == "sla_compliance_percentage",
              "generic broadcast of backlog:update validated")
        check(await next_update(ws, 0.5) is None, "no refused payload reached the subscriber")
        st, ans = call(port, "POST", "/api/broadcast",
                       {"event": "kpi:update", "target": {"organization_id": "acme"},
                        "data": {"health_score": 64}})
        u = await next_update(ws)
        check(st == 200 and u is not None and u["topic"] == "kpi:org:acme"
              and u["data"]["organization_id"] == "acme" and "timestamp" in u["data"],
              "generic kpi:update: scope from the target, timestamp stamped by the server")
        # free-form stays free-form
        st, _ = call(port, "POST", "/api/broadcast",
                     {"channel": "kpi", "target": {"organization_id": "acme"}, "data": {"x": 1}})
        check(st == 200, "a broadcast without a seed 003 event is not validated")
    # rtctl shows the field of a refused broadcast and exits 1
    p = await asyncio.create_subprocess_exec(
        RTCTL, "--url", f"http://127.0.0.1:{port}", "broadcast", "kpi", "--org", "acme",
        "--event", "kpi:update", "health_score=250", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(p.communicate(), 20)
    check(p.returncode == 1 and b"health_score: must be a number from 0 to 100" in err,
          "rtctl broadcast of a bad kpi:update exits 1 with the field")


async def json_first(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def recv_event(ws, event, limit=5.0):
    """The next `update` whose event is `event` (others are skipped), or None."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        u = await next_update(ws, max(0.05, end - time.monotonic()))
        if u is None:
            return None
        if u["event"] == event:
            return u
    return None


async def lifecycle(port):
    """An alert ingested over REST, acknowledged and resolved, seen by a WebSocket subscriber
    of its organization; illegal steps refused with 404/409."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await json_first(ws)
        await subscribe(ws, "alerts", "acme")
        st, ans = call(port, "POST", "/api/broadcast/alert",
                       {"organization_id": "acme", "department_id": "support", "severity": "critical",
                        "rule_name": "Queue on fire", "source": "backlog", "message": "email queue on fire",
                        "current_value": 120, "threshold_value": 50})
        check(st == 200 and ans["alert"]["status"] == "pending" and ans["event"] == "alert:triggered",
              "POST /api/broadcast/alert triggers a pending alert")
        aid = ans["alert"]["alert_id"]
        u = await recv_event(ws, "alert:triggered")
        check(u is not None and u["data"]["alert_id"] == aid and u["priority"] == "urgent"
              and u["topic"] == "alerts:org:acme:dept:support" and u["data"]["status"] == "pending"
              and "triggered_at" in u["data"], "alert:triggered pushed to the org's subscriber")
        st, ans = call(port, "GET", "/api/alerts?status=pending&org=acme")
        check(st == 200 and aid in [a["alert_id"] for a in ans["alerts"]], "GET /api/alerts?status=pending&org=acme")
        st, ans = call(port, "GET", "/api/alerts?org=globex")
        check(st == 200 and ans["total_count"] == 0, "GET /api/alerts filters by scope")
        st, ans = call(port, "POST", f"/api/alerts/{aid}/acknowledge", {"by": "alice"})
        check(st == 200 and ans["alert"]["status"] == "acknowledged"
              and ans["alert"]["acknowledged_by"] == "alice", "acknowledge -> 200 acknowledged")
        u = await recv_event(ws, "alert:acknowledged")
        check(u is not None and u["data"]["alert_id"] == aid and u["data"]["acknowledged_by"] == "alice"
              and "acknowledged_at" in u["data"], "alert:acknowledged pushed")
        st, ans = call(port, "POST", f"/api/alerts/{aid}/acknowledge")
        check(st == 409 and ans["error"]["code"] == "CONFLICT" and ans["error"]["status"] == "acknowledged",
              "acknowledging twice -> 409 CONFLICT")
        st, ans = call(port, "POST", "/api/alerts/al-nosuch/acknowledge")
        check(st == 404 and ans["error"]["code"] == "NOT_FOUND", "unknown alert -> 404")
        st, ans = call(port, "GET", f"/api/alerts/{aid}/acknowledge")
        check(st == 405, "GET on an action -> 405")
        st, ans = call(port, "GET", "/api/alerts?status=open")
        check(st == 400 and ans["error"]["field"] == "status", "bad status filter -> 400 naming it")
        st, ans = call(port, "POST", f"/api/alerts/{aid}/resolve", {"by": "bob"})
        check(st == 200 and ans["alert"]["status"] == "resolved", "resolve -> 200 resolved")
        u = await recv_event(ws, "alert:resolved")
        check(u is not None and u["data"]["resolved_by"] == "bob", "alert:resolved pushed")
        st, ans = call(port, "POST", f"/api/alerts/{aid}/resolve")
        check(st == 409 and "resolved" in ans["error"]["message"], "resolving twice -> 409")
        st, ans = call(port, "GET", f"/api/alerts/{aid}")
        check(st == 200 and ans["alert"]["status"] == "resolved", "GET /api/alerts/{id}")
        # seed 003's way: the whole alert broadcast again with its new status
        st, ans = call(port, "POST", "/api/broadcast",
                       {"event": "alert:triggered", "target": {"organization_id": "acme"},
                        "data": {"alert_id": "ext-1", "severity": "low", "message": "m"}})
        check(st == 200 and ans["alert"]["alert_id"] == "ext-1", "generic alert:triggered enters the lifecycle")
        st, ans = call(port, "POST", "/api/broadcast/alert",
                       {"alert_id": "ext-1", "status": "acknowledged", "acknowledged_by": "carol"})
        check(st == 200 and ans["alert"]["acknowledged_by"] == "carol", "status acknowledged moves it")
        st, ans = call(port, "POST", "/api/broadcast/alert", {"alert_id": "ext-9", "status": "resolved"})
        check(st == 404, "a status change of an unknown alert -> 404")
        st, ans = call(port, "POST", "/api/broadcast/alert",
                       {"alert_id": "ext-1", "organization_id": "acme", "severity": "low", "message": "m"})
        check(st == 409 and ans["error"]["code"] == "CONFLICT", "an alert id is not triggered twice")


async def rule(port):
    """The config's rule: sla_risk.current > 0.3 for 2 evaluations (every 0.2 s) raises an
    alert once, resolves it when the value is back inside."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await json_first(ws)
        await subscribe(ws, "alerts", "acme")
        hot = dict(KPI, queue_name="phone", sla_risk={"current": 0.45}, timestamp="2026-01-31T10:01:00Z")
        t0 = time.monotonic()
        st, _ = call(port, "POST", "/api/broadcast/kpi", hot)
        u = await recv_event(ws, "alert:triggered", 10)
        elapsed = time.monotonic() - t0
        check(st == 200 and u is not None and u["data"]["rule_id"] == "sla-risk"
              and u["data"]["current_value"] == 0.45 and u["data"]["threshold_value"] == 0.3
              and u["data"]["severity"] == "high" and u["data"]["queue_name"] == "phone",
              "the rule triggers alert:triggered with the value and threshold")
        check(elapsed >= 0.18, f"only after 2 evaluations ({elapsed:.2f} s)")
        await asyncio.sleep(0.7)  # more breaching evaluations
        st, ans = call(port, "GET", "/api/alerts?rule_id=sla-risk&status=active")
        check(st == 200 and ans["total_count"] == 1, "one alert while the value stays out")
        aid = ans["alerts"][0]["alert_id"] if ans["alerts"] else None
        call(port, "POST", "/api/broadcast/kpi", dict(hot, sla_risk={"current": 0.1}))
        u = await recv_event(ws, "alert:resolved", 10)
        check(u is not None and u["data"]["alert_id"] == aid
              and u["data"]["resolved_by"] == "rule:sla-risk", "back inside: alert:resolved by the rule")


async def escalation(port):
    """A pending alert is escalated each escalate_after until critical: alert:escalated with the
    severity one level up, escalation_level and escalated_at; an acknowledged one is not."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await json_first(ws)
        await subscribe(ws, "alerts", "esc")
        st, ans = call(port, "POST", "/api/broadcast/alert",
                       {"organization_id": "esc", "severity": "medium", "message": "queue growing",
                        "escalate_after": 0.5})
        aid = ans["alert"]["alert_id"]
        st2, taken = call(port, "POST", "/api/broadcast/alert",
                          {"organization_id": "esc", "severity": "low", "message": "taken at once"})
        call(port, "POST", f"/api/alerts/{taken['alert']['alert_id']}/acknowledge", {"by": "ann"})
        first = await recv_event(ws, "alert:escalated", 4)
        check(st == 200 and first is not None and first["data"]["alert_id"] == aid
              and first["data"]["severity"] == "high" and first["data"]["escalation_level"] == 1
              and "escalated_at" in first["data"] and first["data"]["status"] == "pending"
              and first["priority"] == "urgent" and first["topic"] == "alerts:org:esc",
              f"a pending alert is escalated: medium -> high ({first and first['data']})")
        second = await recv_event(ws, "alert:escalated", 4)
        check(second is not None and second["data"]["alert_id"] == aid
              and second["data"]["severity"] == "critical" and second["data"]["escalation_level"] == 2,
              f"... again: high -> critical ({second and second['data']})")
        third = await recv_event(ws, "alert:escalated", 2.5)
        check(third is None, f"... and no further than critical, nor the acknowledged one ({third and third['data']})")
        st, ans = call(port, "GET", f"/api/alerts/{aid}")
        check(st == 200 and ans["alert"]["severity"] == "critical" and ans["alert"]["escalation_level"] == 2,
              "GET /api/alerts/{id} shows the escalated severity")
        st, ans = call(port, "POST", "/api/broadcast/alert",
                       {"organization_id": "esc", "severity": "low", "message": "m", "escalate_after": -1})
        check(st == 400 and ans["error"]["field"] == "escalate_after", f"a negative escalate_after -> 400 ({ans})")


def tools(port):
    url = f"http://127.0.0.1:{port}"
    st, ans = call(port, "POST", "/api/broadcast/alert",
                   {"organization_id": "globex", "severity": "medium", "message": "for rtctl"})
    aid = ans["alert"]["alert_id"]
    rc, out, err = rtctl("--url", url, "alerts")
    check(rc == 0 and out.startswith("ALERT_ID") and aid in out and "for rtctl" in out,
          "rtctl alerts: a table")
    rc, out, err = rtctl("--url", url, "--json", "alerts", "list", "--status", "pending", "--org", "globex")
    check(rc == 0 and [a["alert_id"] for a in json.loads(out)["alerts"]] == [aid],
          "rtctl --json alerts list --status --org")
    rc, out, err = rtctl("--url", url, "alerts", "--status", "opened")
    check(rc == 2, "rtctl alerts --status bogus is a usage error")
    rc, out, err = rtctl("--url", url, "alerts", "ack", aid, "--by", "dave")
    check(rc == 0 and "status:" in out and "acknowledged" in out and "dave" in out, "rtctl alerts ack")
    rc, out, err = rtctl("--url", url, "alerts", "ack", aid)
    check(rc == 1 and "CONFLICT" in err, "rtctl alerts ack twice exits 1 with the server's no")
    rc, out, err = rtctl("--url", url, "--json", "alerts", "resolve", aid)
    check(rc == 0 and json.loads(out)["alert"]["status"] == "resolved", "rtctl --json alerts resolve")
    rc, out, err = rtctl("--url", url, "alerts", "show", aid)
    check(rc == 0 and "resolved" in out, "rtctl alerts show")
    rc, out, err = rtctl("--url", url, "alerts", "resolve", "al-none")
    check(rc == 1 and "NOT_FOUND" in err, "rtctl alerts resolve of an unknown id exits 1")
    rc, out, err = rtctl("--url", url, "alerts", "ack")
    check(rc == 2, "rtctl alerts ack without an ID is a usage error")
    rc, out, err = rtctl("--url", url, "alerts", "silence", aid)
    check(rc == 2, "rtctl alerts with an unknown action is a usage error")
    rc, out, err = rtctl("--url", "http://127.0.0.1:1", "alerts")
    check(rc == 3, "rtctl alerts cannot connect exits 3")


def rtctl(*args):
    p = subprocess.run([RTCTL, *args], capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout, p.stderr


def bad_rules(tmp):
    for rules, setting in (([{"id": "r", "channel": "kpi", "field": "/x", "threshold": 1, "op": "above"}],
                            "alerts.rules[0].op"),
                           ([{"id": "r", "channel": "kpi", "field": "x", "threshold": 1}],
                            "alerts.rules[0].field"),
                           ([{"id": "r", "channel": "kpi", "field": "/x"}], "alerts.rules[0].threshold"),
                           ([{"id": "r", "channel": "kpi", "field": "/x", "threshold": 1, "escalate_after": "soon"}],
                            "alerts.rules[0].escalate_after")):
        path = os.path.join(tmp, "bad_rules.json")
        with open(path, "w") as f:
            json.dump({"alerts": {"interval": 1, "rules": rules}}, f)
        p = subprocess.run([RTD, "--port", "0", "--config", path], capture_output=True, text=True,
                           timeout=20)
        check(p.returncode == 2 and setting in p.stderr, f"invalid rule stops rtd naming {setting}")


def main():
    tmp = tempfile.mkdtemp(prefix="rtd_alerts_")
    config = os.path.join(tmp, "rtd.json")
    with open(config, "w") as f:
        json.dump({"alerts": {"interval": 0.2, "rules": [
            {"id": "sla-risk", "name": "SLA risk above 30%", "channel": "kpi", "scope": {"org": "acme"},
             "field": "/sla_risk/current", "op": ">", "threshold": 0.3, "for": 2, "severity": "high",
             "escalate_after": 0}]}}, f)
    rtd, port = start_rtd(RTD, "--config", config, "--alert-escalation-after", "1")
    try:
        asyncio.run(ingest(port))
        asyncio.run(lifecycle(port))
        asyncio.run(rule(port))
        asyncio.run(escalation(port))
        tools(port)
    finally:
        rtd.send_signal(signal.SIGTERM)
        check(rtd.wait(timeout=15) == 0, "rtd exits 0 on SIGTERM")
    bad_rules(tmp)
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all passed")


main()
