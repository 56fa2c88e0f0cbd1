#!/usr/bin/python3
# "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md,
# "Seed parity", lists what each does and what rtd answers for it.
"""Acknowledged delivery end to end against rtd (docs/protocol.md, "Acknowledged delivery"):
a client that does not ack gets the message re-sent, an ack stops the re-sends, a client that
disconnects before acking gets it after reconnecting (named by `hello {clientId}`), and
GET /api/broadcast/{id} reports all of it; bad acks get clear errors; rtcat (plain and
--reconnect, i.e. rtpush::client) acks by itself and shows the id.
Usage: acks.py PATH_TO_RTD PATH_TO_RTCAT
"""
import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import websockets

from rtdtest import check, failures, start_rtd

RTD, RTCAT = sys.argv[1], sys.argv[2]
RESEND = 0.3  # --ack-resend: re-sends after 0.3, 0.9, 2.1 s ... (doubling)


def http(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def recv_json(ws, timeout):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def collect(ws, seconds, want=lambda m: True):
    """Every message matching `want` that arrives within `seconds`."""
    out = []
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return out
        try:
            m = await recv_json(ws, left)
        except asyncio.TimeoutError:
            return out
        if want(m):
            out.append(m)


async def connect(url, client_id=None, subscribe=("notices", "acme")):
    ws = await websockets.connect(url)
    await recv_json(ws, 5)  # connected
    if client_id:
        await ws.send(json.dumps({"type": "hello", "clientId": client_id, "id": "h"}))
        m = await recv_json(ws, 5)
        assert m["type"] == "hello", m
    if subscribe:
        await ws.send(json.dumps({"type": "subscribe", "channel": subscribe[0],
                                  "scope": {"org": subscribe[1]}, "id": "s"}))
        while (await recv_json(ws, 5))["type"] != "subscribed":
            pass
    return ws


def updates(m):
    return m.get("type") == "update"


async def next_of(ws, types, timeout=5):
    """The next message of one of `types` (heartbeats and the like are skipped)."""
    end = time.monotonic() + timeout
    while True:
        m = await recv_json(ws, max(0.01, end - time.monotonic()))
        if m.get("type") in types:
            return m


async def main(port):
    url = f"ws://127.0.0.1:{port}/ws"
    a = await connect(url, "dash-a")  # never acks (until told to)
    b = await connect(url, "dash-b")  # acks at once
    other = await connect(url, None, ("notices", "globex"))  # not targeted

    st, res = http(port, "POST", "/api/broadcast",
                   {"event": "notice:posted", "channel": "notices",
                    "target": {"organization_id": "acme"},
                    "data": {"rule": "sla"}, "priority": "urgent", "requires_ack": True})
    check(st == 200 and isinstance(res.get("id"), str), f"POST requires_ack returns an id ({res})")
    bid = res["id"]

    mb = await next_of(b, ("update",))
    check(mb["type"] == "update" and mb.get("ackId") == bid, f"b receives it with the id ({mb})")
    await b.send(json.dumps({"type": "ack", "id": bid}))

    got_a = await collect(a, 1.5, updates)
    check(len(got_a) >= 3, f"a (no ack) gets it re-sent: {len(got_a)} copies in 1.5 s")
    check(all(m.get("ackId") == bid for m in got_a), "every copy carries the ackId")
    check(not got_a[0].get("redelivered") and all(m.get("redelivered") for m in got_a[1:]),
          "re-sends are marked redelivered, the first delivery is not")
    check(got_a[0]["seq"] == got_a[-1]["seq"], "a re-send is the same publication (same seq)")
    got_b = await collect(b, 0.8, updates)
    check(got_b == [], f"b acked: nothing re-sent to it ({len(got_b)})")
    check(await collect(other, 0.2, updates) == [], "another organization is not targeted")

    st, rep = http(port, "GET", f"/api/broadcast/{bid}")
    check(st == 200 and rep["targeted"] == 2 and rep["acked"] == 1 and
          rep["not_acked"] == ["client:dash-a"] and rep["topic"] == "notices:org:acme",
          f"GET reports 2 targeted, 1 acked, dash-a missing ({rep})")

    await a.send(json.dumps({"type": "ack", "id": bid}))
    await a.send(json.dumps({"type": "ack", "id": bid}))  # a second ack is harmless
    await collect(a, 0.3)  # a re-send already on its way when the ack left
    after = await collect(a, 2.5)  # past the next re-send times (2.1 s, 4.5 s after the POST)
    check([m for m in after if m.get("type") in ("update", "error")] == [],
          f"a acked: re-sends stop, a duplicate ack is no error ({after})")
    st, rep = http(port, "GET", f"/api/broadcast/{bid}")
    check(rep["acked"] == 2 and rep["not_acked"] == [] and rep["pending"] == 0,
          f"GET after both acks ({rep})")

    # bad acks: clear errors, the connection stays
    await other.send(json.dumps({"type": "ack", "id": "no-such-id"}))
    e = await next_of(other, ("error",))
    check(e["type"] == "error" and e["code"] == "INVALID_MESSAGE" and
          "unknown ack id 'no-such-id'" in e["message"] and e.get("id") == "no-such-id",
          f"unknown ack id: {e}")
    await other.send(json.dumps({"type": "ack", "id": bid}))
    e = await next_of(other, ("error",))
    check(e["type"] == "error" and "was not sent to this client" in e["message"],
          f"ack of a message never sent to this client: {e}")
    await other.send(json.dumps({"type": "ack"}))
    e = await next_of(other, ("error",))
    check(e["type"] == "error" and "ackId" in e["message"], f"ack without id: {e}")
    await other.send(json.dumps({"type": "hello", "clientId": "bad id!"}))
    e = await next_of(other, ("error",))
    check(e["type"] == "error" and "clientId" in e["message"], f"bad clientId: {e}")

    # disconnect before acking, come back under the same clientId: the message follows
    c = await connect(url, "dash-c")
    st, res = http(port, "POST", "/api/broadcast/notices?requires_ack=true",
                   {"organization_id": "acme", "text": "shortcut route"})
    cid = res.get("id")
    check(st == 200 and cid and cid != bid, f"per-channel route with requires_ack ({res})")
    first = await next_of(c, ("update",))
    check(first.get("ackId") == cid and first["data"].get("text") == "shortcut route" and
          "requires_ack" not in first["data"] and "organization_id" in first["data"],
          f"c got it (the route's flag is not part of the data) ({first})")
    await c.close()
    await asyncio.sleep(1.0)  # offline past several re-send times
    st, rep = http(port, "GET", f"/api/broadcast/{cid}")
    check(rep["targeted"] == 3 and "client:dash-c" in rep["not_acked"],
          f"while c is away: targeted, not acked ({rep})")
    c2 = await websockets.connect(url)
    await recv_json(c2, 5)
    await c2.send(json.dumps({"type": "hello", "clientId": "dash-c", "id": 1}))
    h = await next_of(c2, ("hello",))
    check(h["type"] == "hello" and h["pending"] == 1, f"hello reports 1 pending ({h})")
    m = await next_of(c2, ("update",))
    check(m["type"] == "update" and m.get("ackId") == cid and m.get("redelivered") is True,
          f"after reconnecting (no subscribe needed), c gets what it missed ({m})")
    await c2.send(json.dumps({"type": "ack", "id": cid}))
    check(await collect(c2, 0.8, updates) == [], "acked after the reconnect: no more re-sends")
    for ws in (a, b):  # they ack the shortcut broadcast too
        for mm in await collect(ws, 0.1, updates):
            await ws.send(json.dumps({"type": "ack", "id": mm["ackId"]}))
    await asyncio.sleep(0.2)
    st, rep = http(port, "GET", f"/api/broadcast/{cid}")
    check(rep["targeted"] == 3 and rep["acked"] == 3 and rep["not_acked"] == [],
          f"GET: all three acked ({rep})")

    # a WebSocket publish with requires_ack
    await b.send(json.dumps({"type": "publish", "channel": "notices", "scope": {"org": "acme"},
                             "data": {"x": 1}, "requires_ack": True, "id": "p1"}))
    msgs = await collect(b, 1.0, lambda m: m.get("type") in ("published", "update"))
    pub = [m for m in msgs if m["type"] == "published"]
    upd = [m for m in msgs if m["type"] == "update"]
    check(pub and pub[0].get("ackId") and upd and upd[0].get("ackId") == pub[0]["ackId"],
          f"publish over WebSocket: published and update carry the ackId ({msgs[:2]})")

    # seed 001's use: an alert sent with requires_ack goes through the alert lifecycle and is
    # re-sent until acked like any other
    al = await connect(url, "dash-alerts", ("alerts", "acme"))
    st, res = http(port, "POST", "/api/broadcast/alert?requires_ack=true",
                   {"organization_id": "acme", "severity": "critical", "rule_name": "SLA",
                    "source": "backlog", "message": "queue over SLA", "current_value": 9,
                    "threshold_value": 5})
    aid = res.get("id")
    check(st == 200 and aid and res.get("event") == "alert:triggered",
          f"alert with requires_ack: lifecycle answer with an id ({res})")
    m1 = await next_of(al, ("update",))
    m2 = await next_of(al, ("update",))
    check(m1.get("ackId") == aid and m1.get("event") == "alert:triggered" and m2.get("ackId") == aid
          and m2.get("redelivered") is True, f"the alert is re-sent until acked ({m1}, {m2})")
    await al.send(json.dumps({"type": "ack", "id": aid}))
    await asyncio.sleep(0.3)
    st, rep = http(port, "GET", f"/api/broadcast/{aid}")
    check(st == 200 and rep["acked"] == 1, f"the alert's ack is counted ({rep})")
    await al.close()

    # unknown ids, plain broadcasts have no report
    st, res = http(port, "GET", "/api/broadcast/nope")
    check(st == 404 and res["error"]["code"] == "NOT_FOUND", f"GET unknown id: 404 ({res})")
    st, res = http(port, "POST", "/api/broadcast", {"channel": "notices", "data": {}})
    check(st == 200 and "id" not in res, f"without requires_ack: no id ({res})")
    st, res = http(port, "POST", "/api/broadcast",
                   {"channel": "notices", "data": {}, "requires_ack": "yes"})
    check(st == 400 and "requires_ack" in res["error"]["message"], f"bad requires_ack ({res})")
    for ws in (a, b, other, c2):
        await ws.close()


def rtcat_acks(port, extra):
    """rtcat subscribed to notices:acme, a broadcast while it runs: it acks and shows the id."""
    p = subprocess.Popen([RTCAT, "-c", f"ws://127.0.0.1:{port}/ws", "--subscribe", "notices:acme",
                          "-w", "2.5", *extra],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(1.0)
    _, res = http(port, "POST", "/api/broadcast",
                  {"channel": "notices", "target": {"organization_id": "acme"}, "data": {"r": 1},
                   "requires_ack": True})
    out, err = p.communicate("", timeout=30)
    ids = [json.loads(line).get("ackId") for line in out.splitlines() if '"ackId"' in line]
    return res["id"], ids, err


def rtcat_checks(port):
    for extra, key in ((["--client-id", "cat-plain"], "client:cat-plain"),
                       (["--reconnect", "--client-id", "cat-rc"], "client:cat-rc")):
        bid, ids, err = rtcat_acks(port, extra)
        mode = "--reconnect" if "--reconnect" in extra else "plain"
        check(ids == [bid], f"rtcat {mode}: the update with its ackId, once ({ids})")
        check(f"# acked {bid}" in err, f"rtcat {mode}: shows the ack ({err!r})")
        _, rep = http(port, "GET", f"/api/broadcast/{bid}")
        check(rep.get("targeted") == 1 and rep.get("acked") == 1 and rep.get("not_acked") == [],
              f"rtcat {mode}: the server counts {key}'s ack ({rep})")


rtd, port = start_rtd(RTD, "--ack-resend", str(RESEND), "--ack-attempts", "20",
                      "--allow-publish", "--heartbeat-interval", "5")
try:
    asyncio.run(asyncio.wait_for(main(port), 45))
    rtcat_checks(port)
finally:
    rtd.terminate()
    rtd.wait(10)

if failures:
    print(f"{len(failures)} failed:", *failures, sep="\n  ")
    sys.exit(1)
print("all passed")
