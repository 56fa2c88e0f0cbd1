#!/usr/bin/python3
"""Multi-node rtd on the Redis engine, end to end: a real redis-server on a free loopback
port, started and stopped here, and several rtd nodes sharing it.

- a publish on A reaches subscribers on A, B and C exactly once, in order, with the same
  epoch and seqs; a client landing on any node gets `initial` from Redis;
- a client moves from A to B and recovers without a gap;
- kill -9 of node A while ~1000 msg/s are published: clients with the URLs [A, B] fail over
  to B with zero lost and zero duplicated messages;
- history window exceeded: `recovered:false` and a fresh snapshot;
- cluster view in /api/stats, redis_up in /health and /metrics;
- Redis restarted: the nodes report redis_up=false meanwhile, reconnect, and deliver again;
- AUTH (ACL user or password) and SELECT from the URL;
- rediss://: TLS with a verified server certificate and a client certificate; a wrong CA, a
  missing client certificate and a mismatched name leave the node serving without Redis.

Usage: redis_cluster.py PATH_TO_RTD [PATH_TO_RTCTL]
"""
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import websockets

from rtdtest import check, failures, make_pki, start_rtd

RTD = sys.argv[1] if __name__ == "__main__" else None  # imported: its helpers
RTCTL = sys.argv[2] if len(sys.argv) > 2 else None
REDIS = shutil.which("redis-server")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(port, workdir, *extra):
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir, *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                    return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def numsub(redis_port, channel):
    """How many connections Redis has subscribed to a pub/sub channel."""
    with socket.create_connection(("127.0.0.1", redis_port), timeout=2) as s:
        s.sendall(f"PUBSUB NUMSUB {channel}\r\n".encode())
        data = b""
        while data.count(b"\r\n") < 4:
            data += s.recv(256)
        return int(data.split(b"\r\n")[3][1:])


def redis_command(redis_port, *args):
    """Sends one command to Redis; returns its raw reply (enough for integers and strings)."""
    cmd = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", redis_port), timeout=2) as s:
        s.sendall(cmd.encode())
        time.sleep(0.1)
        return s.recv(1 << 16).decode(errors="replace")


def http(port, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text.startswith(("{", "[")) else text)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode() or "{}")


def wait_for(cond, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if cond():
                return True
        except Exception:
            pass
        time.sleep(0.05)
    return False


def node(redis_url, node_id, prefix, history=5000):
    return start_rtd(RTD, "--engine", "redis", "--redis-url", redis_url, "--redis-prefix", prefix,
                     "--node-id", node_id, "--threads", "1", "--history-size", str(history),
                     "--allow-publish", "--max-messages-per-second", "0")


def up(port):
    return http(port, "/api/health")[1].get("redis_up") is True


def stop_all(procs, redis, kill=False):
    """Stops the nodes of a scenario (politely unless `kill`) and its own redis-server."""
    for p in procs:
        if p.poll() is None:
            p.kill() if kill else p.terminate()
            p.wait(10)
    redis.kill()
    redis.wait(5)


def sub_msg(org, recover=None, id_="s"):
    m = {"type": "subscribe", "channel": "kpi", "scope": {"org": org}, "id": id_}
    if recover:
        m["recover"] = recover
    return json.dumps(m)


class Sub:
    """A WebSocket subscriber that records every initial/update it receives."""

    def __init__(self, port, org):
        self.port, self.org, self.updates, self.initials, self.ack = port, org, [], [], None

    async def open(self, recover=None):
        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/ws", max_size=None)
        await self.ws.recv()  # connected
        await self.ws.send(sub_msg(self.org, recover))
        while self.ack is None:
            m = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if m["type"] == "subscribed":
                self.ack = m
        return self

    async def drain(self, until_count=None, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if until_count is not None and len(self.updates) >= until_count:
                return
            try:
                m = json.loads(await asyncio.wait_for(self.ws.recv(), 0.3))
            except asyncio.TimeoutError:
                if until_count is None:
                    return
                continue
            if m["type"] == "update":
                self.updates.append(m)
            elif m["type"] == "initial":
                self.initials.append(m)


async def publish_ws(port, org, values, rate=0):
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await ws.recv()
        t0 = time.time()
        for i, v in enumerate(values):
            await ws.send(json.dumps({"type": "publish", "channel": "kpi", "scope": {"org": org},
                                      "data": {"v": v}}))
            if rate and i % 10 == 9:  # paced in bursts of 10 (sleep is coarse)
                ahead = t0 + (i + 1) / rate - time.time()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        # every publish answered once Redis took it, with the seq Redis gave it
        seqs = []
        while len(seqs) < len(values):
            m = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if m["type"] == "published":
                seqs.append(m["seq"])
            elif m["type"] == "error":
                raise RuntimeError(m)
        return seqs


async def fan_out_exactly_once(a, b, c):
    subs = [await Sub(p, "acme").open() for p in (a, b, c)]
    answered = await publish_ws(a, "acme", list(range(1, 201)))
    check(answered == list(range(1, 201)), f"`published` answers carry Redis's seqs ({answered[:3]}...)")
    for s in subs:
        await s.drain(until_count=200)
        await s.drain()  # and nothing more
    for name, s in zip("ABC", subs):
        vals = [u["data"]["v"] for u in s.updates]
        seqs = [u["seq"] for u in s.updates]
        check(vals == list(range(1, 201)), f"node {name}: 200 publications of A, exactly once, in order")
        check(seqs == list(range(1, 201)), f"node {name}: seqs 1..200 assigned by Redis")
    check(len({s.updates[-1]["epoch"] for s in subs}) == 1, "one epoch on every node")
    # a client landing on a node gets the latest value (kept in Redis) as initial
    late = await Sub(c, "acme").open()
    await late.drain()
    check(len(late.initials) == 1 and late.initials[0]["data"]["v"] == 200
          and late.initials[0]["seq"] == 200, "initial on C: the latest value, seq 200")
    # the HTTP broadcast answer waits for Redis too, and carries the seq and the epoch
    st, body = http(b, "/api/broadcast/kpi", {"organization_id": "acme", "health_score": 90})
    check(st == 200 and body.get("seq") == 201 and body.get("epoch") == subs[0].updates[-1]["epoch"],
          f"POST /api/broadcast on B: 200 with seq 201 and the cluster's epoch ({st} {body})")
    for s in subs + [late]:
        await s.ws.close()


async def move_and_recover(a, b, c):
    s = await Sub(a, "move").open()
    await publish_ws(c, "move", list(range(1, 51)))
    await s.drain(until_count=50)
    last = s.updates[-1]
    await s.ws.close()
    await publish_ws(c, "move", list(range(51, 81)))  # missed while away
    t = await Sub(b, "move").open(recover={"epoch": last["epoch"], "offset": last["seq"]})
    await t.drain(until_count=30)
    await t.drain()
    check(t.ack.get("recovered") is True, "client moved from A to B: recovered:true")
    check([u["data"]["v"] for u in t.updates] == list(range(51, 81)),
          "on B: exactly the 30 missed publications, in order, no initial")
    check(not t.initials, "recovery sends no snapshot")
    await t.ws.close()


class FailoverClient:
    """A client with several URLs, as rtpush::client behaves: on loss it connects to the next
    URL and resubscribes with recover {epoch, offset}; it counts raw duplicates and gaps."""

    def __init__(self, ports, org):
        self.urls = [f"ws://127.0.0.1:{p}/ws" for p in ports]
        self.org, self.seqs, self.raw_dups, self.epoch, self.failovers = org, [], 0, None, 0
        self.recovered = []

    async def run(self, stop):
        i = 0
        while not stop.is_set():
            try:
                async with websockets.connect(self.urls[i % len(self.urls)], max_size=None) as ws:
                    await ws.recv()
                    rec = None
                    if self.epoch:
                        rec = {"epoch": self.epoch, "offset": self.seqs[-1] if self.seqs else 0}
                    await ws.send(sub_msg(self.org, rec))
                    while not stop.is_set():
                        try:
                            m = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                        except asyncio.TimeoutError:
                            continue
                        if m["type"] == "subscribed" and "recovered" in m:
                            self.recovered.append(m["recovered"])
                        if m["type"] != "update":
                            continue
                        self.epoch = m["epoch"]
                        if self.seqs and m["seq"] <= self.seqs[-1]:
                            self.raw_dups += 1
                            continue
                        self.seqs.append(m["seq"])
            except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError):
                pass
            i += 1
            self.failovers += 1
            await asyncio.sleep(0.05)


async def kill_during_publishing(a_proc, a, b, c):
    stop = asyncio.Event()
    clients = [FailoverClient([a, b], "fo") for _ in range(3)]
    tasks = [asyncio.create_task(cl.run(stop)) for cl in clients]
    await asyncio.sleep(0.5)
    total = 3000

    async def killer():
        await asyncio.sleep(1.2)
        a_proc.send_signal(signal.SIGKILL)

    t0 = time.time()
    await asyncio.gather(publish_ws(c, "fo", list(range(1, total + 1)), rate=1000), killer())
    rate = total / (time.time() - t0)
    deadline = time.time() + 15
    while time.time() < deadline and any(len(cl.seqs) < total for cl in clients):
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*tasks)
    print(f"     published {total} at {rate:.0f} msg/s; failovers "
          f"{[cl.failovers for cl in clients]}, recovered {[cl.recovered for cl in clients]}")
    for k, cl in enumerate(clients):
        check(cl.seqs == list(range(1, total + 1)),
              f"failover client {k}: all {total} seqs, in order, none lost "
              f"(got {len(cl.seqs)}, first missing "
              f"{next((i for i in range(1, total + 1) if i not in set(cl.seqs)), None)})")
        check(cl.raw_dups == 0, f"failover client {k}: zero duplicates delivered ({cl.raw_dups})")
        check(cl.recovered and all(cl.recovered), f"failover client {k}: recovered on B")


async def window_exceeded(d, e):
    s = await Sub(d, "win").open()
    await publish_ws(d, "win", list(range(1, 6)))
    await s.drain(until_count=5)
    last = s.updates[-1]
    await s.ws.close()
    await publish_ws(d, "win", list(range(6, 60)))  # history-size 20: 6.. has left it
    t = await Sub(e, "win").open(recover={"epoch": last["epoch"], "offset": last["seq"]})
    await t.drain()
    check(t.ack.get("recovered") is False and t.ack.get("reason") == "history_lost",
          f"window exceeded: recovered:false, history_lost ({t.ack})")
    check(len(t.initials) == 1 and t.initials[0]["data"]["v"] == 59 and not t.updates,
          "window exceeded: a fresh snapshot (initial, latest value)")
    await t.ws.close()


async def after_redis_restart(a, b):
    s = await Sub(b, "again").open()
    await publish_ws(a, "again", [1, 2, 3])
    await s.drain(until_count=3)
    check([u["data"]["v"] for u in s.updates] == [1, 2, 3],
          "after Redis restarted: publish on A reaches B again")
    check(s.updates[0]["seq"] == 1, "a Redis that lost its data starts a new history (seq 1)")
    await s.ws.close()


async def acks_across_nodes(a, b):
    """A requires_ack broadcast on A: a client on B gets it with its ackId, is re-sent it
    until it acks, and B's delivery report counts the ack."""
    async with websockets.connect(f"ws://127.0.0.1:{b}/ws") as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "hello", "clientId": "dash-b"}))
        await ws.send(json.dumps({"type": "subscribe", "channel": "notes",
                                  "scope": {"org": "ack"}, "id": "s"}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "subscribed":
            pass
        st, body = http(a, "/api/broadcast", {"channel": "notes", "requires_ack": True,
                                              "target": {"organization_id": "ack"},
                                              "data": {"m": 1}})
        bid = body.get("id")
        check(st == 200 and bid, f"requires_ack broadcast on A: an id ({st} {body})")
        copies = []
        deadline = time.time() + 5
        while len(copies) < 2 and time.time() < deadline:
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), 1))
            except asyncio.TimeoutError:
                continue
            if m["type"] == "update":
                copies.append(m)
        check(len(copies) == 2 and all(c.get("ackId") == bid for c in copies)
              and copies[1].get("redelivered") is True,
              f"client on B: the broadcast with its ackId, re-sent until acked ({copies})")
        await ws.send(json.dumps({"type": "ack", "id": bid}))
        await asyncio.sleep(0.3)
        report = http(b, f"/api/broadcast/{bid}")[1]
        check(report.get("targeted") == 1 and report.get("acked") == 1
              and report.get("pending") == 0, f"B's delivery report counts the ack ({report})")
        more = []
        try:
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                if m["type"] == "update":
                    more.append(m)
        except asyncio.TimeoutError:
            pass
        check(not more, f"acked: no more re-sends ({len(more)})")


async def relayed_across_nodes(a, b):
    """What is not a topic's publication crosses nodes through the relay channel: a broadcast
    to every connection or to an organization's (docs/protocol.md, "Targeting connections")
    reaches the connections of both nodes once; join/leave notices reach a room's subscribers
    on the other node; listed client ids stay on the node that took the request."""
    async def client(port, org):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?org={org}")
        hello = json.loads(await ws.recv())
        return ws, hello["clientId"]

    async def drain(ws, pred, limit=1.0):
        got = []
        try:
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), limit))
                if pred(m):
                    got.append(m)
        except asyncio.TimeoutError:
            pass
        return got

    (x, xid), (y, yid), (z, zid) = [await client(p, o) for p, o in ((a, "acme"), (b, "acme"), (b, "other"))]
    try:
        check(http(a, "/api/broadcast", {"event": "system:notice", "data": {"n": 1}})[0] == 200,
              "relay: a broadcast to every connection, on A")
        check(http(b, "/api/broadcast", {"event": "system:notice", "data": {"n": 2},
                                         "target": {"organization_id": "acme"}})[0] == 200,
              "relay: a broadcast to organization acme, on B")
        check(http(a, "/api/broadcast", {"event": "system:notice", "data": {"n": 3},
                                         "target": {"socket_ids": [xid]}})[0] == 200,
              "relay: a broadcast to a listed id, on A")
        notices = lambda m: m.get("type") == "update" and m.get("event") == "system:notice"
        # Sorted: broadcasts from two nodes (and the listed one, which does not go through
        # Redis) have no order between them.
        got = [sorted(m["data"]["n"] for m in await drain(ws, notices)) for ws in (x, y, z)]
        check(got == [[1, 2, 3], [1, 2], [1]],
              f"relay: everyone on A and B once, acme on both, the listed id on A only ({got})")
        # join/leave (--join-leave room): a subscriber on A learns who joins and leaves on B.
        await x.send(json.dumps({"type": "subscribe", "channel": "room", "scope": {"org": "acme"}}))
        await drain(x, lambda m: False, 0.5)
        await y.send(json.dumps({"type": "subscribe", "channel": "room", "scope": {"org": "acme"}}))
        await asyncio.sleep(0.3)
        # Presence lists the room's members of every node (each node answers a relayed query).
        st, body = http(a, "/api/rooms/room:org:acme/presence")
        listed = sorted((m["client_id"], m["node_id"]) for m in body.get("presence", []))
        check(st == 200 and listed == sorted([(xid, "node-f"), (yid, "node-g")])
              and body.get("node_only") is False and body.get("nodes") == 2,
              f"relay: presence on A lists the room's members on A and B ({st} {body})")
        await x.send(json.dumps({"type": "presence", "channel": "room", "scope": {"org": "acme"}, "id": "p"}))
        got = await drain(x, lambda m: m.get("type") in ("presence", "join", "leave"))
        answer = [m for m in got if m["type"] == "presence"]
        count = answer[0]["count"] if answer else None
        check(count == 2, f"relay: the presence message counts both nodes' members ({count})")
        await y.send(json.dumps({"type": "unsubscribe", "channel": "room", "scope": {"org": "acme"}}))
        seen = [m for m in got if m["type"] != "presence"]
        seen += await drain(x, lambda m: m.get("type") in ("join", "leave"))
        who = [(m["type"], m["client"]["client_id"]) for m in seen]
        check(who == [("join", yid), ("leave", yid)],
              f"relay: join and leave on B reach the room's subscriber on A, once each ({who})")
    finally:
        for ws in (x, y, z):
            await ws.close()


async def alerts_across_nodes(a, b, late, rport):
    """One alert book for every node (docs/operations.md, "Several nodes (Redis)"): an alert
    triggered on one node is acknowledged on another and resolved on the first, and every
    node shows each step; ids never clash; escalation runs once per cluster (the lease), not
    once per node; a node started later finds the alerts with their states."""
    def on(port, aid):
        for al in http(port, "/api/alerts?org=acme")[1].get("alerts", []):
            if al["alert_id"] == aid:
                return al
        return {}

    ws = await websockets.connect(f"ws://127.0.0.1:{b}/ws")
    try:
        await ws.recv()  # connected
        await ws.send(json.dumps({"type": "subscribe", "channel": "alerts",
                                  "scope": {"org": "acme"}, "id": "s"}))
        await asyncio.sleep(0.3)
        alert = {"organization_id": "acme", "severity": "medium", "message": "disk"}
        st1, r1 = http(a, "/api/broadcast/alert", alert)
        st2, r2 = http(b, "/api/broadcast/alert", dict(alert, message="cpu"))
        aid, bid = r1.get("alert", {}).get("alert_id"), r2.get("alert", {}).get("alert_id")
        check(st1 == 200 and st2 == 200 and aid != bid and aid.startswith("al-node-f-")
              and bid.startswith("al-node-g-"), f"alerts: ids per node never clash ({aid}, {bid})")
        check(wait_for(lambda: on(b, aid).get("status") == "pending" and
                       on(a, bid).get("status") == "pending", 5),
              "alerts: each node lists the alert triggered on the other")
        st, ack = http(b, f"/api/alerts/{aid}/acknowledge", {"by": "ann"})
        check(st == 200, f"alerts: B acknowledges A's alert ({st} {ack})")
        check(wait_for(lambda: on(a, aid).get("acknowledged_by") == "ann", 5),
              f"alerts: A sees it acknowledged by ann ({on(a, aid)})")
        st, res = http(a, f"/api/alerts/{aid}/resolve", {"by": "bob"})
        check(st == 200, f"alerts: A resolves it ({st} {res})")
        check(wait_for(lambda: on(b, aid).get("status") == "resolved", 5),
              f"alerts: B sees it resolved ({on(b, aid)})")
        st, again = http(b, f"/api/alerts/{aid}/acknowledge", {"by": "eve"})
        check(st == 409 and on(a, aid).get("status") == "resolved",
              f"alerts: B refuses a step the cluster's state forbids ({st} {again})")
        # Escalation: low -> medium -> high -> critical, one step a second, by one node only.
        st, r3 = http(a, "/api/broadcast/alert", dict(alert, severity="low", message="slow",
                                                      escalate_after=1))
        eid = r3["alert"]["alert_id"]
        steps = []
        end = time.monotonic() + 5.0
        while time.monotonic() < end:
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), end - time.monotonic()))
            except asyncio.TimeoutError:
                break
            if m.get("event") == "alert:escalated" and m["data"]["alert_id"] == eid:
                steps.append((m["data"]["escalation_level"], m["data"]["severity"]))
        check(steps == [(1, "medium"), (2, "high"), (3, "critical")],
              f"alerts: escalated once per step for the whole cluster ({steps})")
        leaders = [http(p, "/api/health")[1].get("leads") for p in (a, b)]
        check(sorted(leaders) == [False, True], f"alerts: one node holds the lease ({leaders})")
    finally:
        await ws.close()
    # The leader keeps the book in Redis: a node that starts now finds every alert's state
    # there even when the alerts' history has left the streams (deleted here).
    check(wait_for(lambda: '"critical"' in redis_command(rport, "HGET", "acks:alerts", eid), 5),
          f"alerts: the shared book in Redis has the last step ({redis_command(rport, 'HGET', 'acks:alerts', eid)!r})")
    deleted = redis_command(rport, "DEL", "acks:s:alerts:org:acme")
    check(deleted.startswith(":1"), f"alerts: the stream of acme's alerts deleted ({deleted!r})")
    (ph, h) = late()
    try:
        check(wait_for(lambda: up(h), 10), "alerts: a late node is up")
        check(wait_for(lambda: on(h, aid).get("status") == "resolved" and
                       on(h, bid).get("status") == "pending" and
                       on(h, eid).get("severity") == "critical", 5),
              f"alerts: the late node has every alert's state ({on(h, aid)}, {on(h, bid)}, {on(h, eid)})")
        st, res = http(h, f"/api/alerts/{bid}/resolve", {"by": "late"})
        check(st == 200 and wait_for(lambda: on(b, bid).get("resolved_by") == "late", 5),
              f"alerts: the late node takes a step the others see ({st})")
    finally:
        ph.terminate()
        ph.wait(10)


async def history_across_nodes(a, b):
    """GET /api/history and the `history` message read the Redis streams (docs/protocol.md,
    "History"): a node none of whose clients follow the channel answers the same pages as
    the node that published, across a topic and its narrower ones in publication order, and a
    cursor from one node pages on another."""
    for i in range(1, 6):
        target = {"organization_id": "hist"}
        if i % 2 == 0:
            target["department_id"] = "d"
        st, _ = http(a, "/api/broadcast", {"channel": "kpi", "target": target, "data": {"v": i}})
        check(st == 200, f"history: publication {i} on A")
    values = lambda page: [it["data"]["v"] for it in page.get("items", [])]
    st, p1 = http(b, "/api/history?channel=kpi&org=hist&limit=2")
    check(st == 200 and values(p1) == [5, 4] and p1.get("next_cursor") is not None,
          f"history: B's first page, newest first ({st} {p1})")
    st, p2 = http(a, f"/api/history?channel=kpi&org=hist&limit=2&cursor={p1['next_cursor']}")
    check(st == 200 and values(p2) == [3, 2], f"history: B's cursor pages on A ({p2})")
    st, p3 = http(b, f"/api/history?channel=kpi&org=hist&limit=2&cursor={p2['next_cursor']}")
    check(st == 200 and values(p3) == [1] and p3.get("next_cursor") is None,
          f"history: ... and the last page on B ({p3})")
    topics = [(it["topic"], it["seq"]) for it in p1["items"]]
    check(topics == [("kpi:org:hist", 3), ("kpi:org:hist:dept:d", 2)],
          f"history: each item with its topic and seq ({topics})")
    async with websockets.connect(f"ws://127.0.0.1:{b}/ws") as ws:
        await ws.recv()  # connected
        await ws.send(json.dumps({"type": "history", "channel": "kpi", "scope": {"org": "hist"},
                                  "order": "oldest", "limit": 10, "id": "h"}))
        m = json.loads(await asyncio.wait_for(ws.recv(), 5))
    check(m.get("type") == "history" and m.get("id") == "h" and values(m) == [1, 2, 3, 4, 5],
          f"history: the `history` message on B, oldest first ({m})")


def slow_redis(workdir):
    """A broadcast is answered when Redis has taken it: a Redis busy for a second delays the
    answer (200, with the seq); a node stopped while Redis is busy answers 503 and exits."""
    import threading
    rport = free_port()
    redis = start_redis(rport, workdir, "--enable-debug-command", "yes")

    def busy(seconds):
        with socket.create_connection(("127.0.0.1", rport), timeout=10) as s:
            s.sendall(f"DEBUG SLEEP {seconds}\r\n".encode())
            s.recv(64)

    def busy_now(seconds):
        """Redis busy for `seconds` from now on (in a thread to join)."""
        t = threading.Thread(target=busy, args=(seconds,))
        t.start()
        time.sleep(0.2)
        return t
    procs = []
    try:
        p, n = node(f"redis://127.0.0.1:{rport}/0", "slow", "slow")
        procs.append(p)
        check(wait_for(lambda: up(n)), "node up")
        t = busy_now(1)
        t0 = time.time()
        st, body = http(n, "/api/broadcast", {"channel": "notes", "data": {"a": 1}})
        waited = time.time() - t0
        t.join()
        check(st == 200 and body.get("seq") == 1 and waited > 0.5,
              f"Redis busy: the answer waits for it, then 200 with seq 1 ({st}, {waited:.2f} s)")
        t = busy_now(3)
        answer = {}
        def post():
            answer["r"] = http(n, "/api/broadcast", {"channel": "notes", "data": {"a": 2}})
        poster = threading.Thread(target=post)
        poster.start()
        time.sleep(0.5)
        t0 = time.time()
        p.terminate()
        p.wait(10)
        stopped = time.time() - t0
        poster.join(10)
        st, body = answer.get("r", (0, {}))
        check(st == 503 and body.get("error", {}).get("code") == "ENGINE_UNAVAILABLE"
              and stopped < 2, f"stopped with a publish in flight: 503, exits in {stopped:.2f} s ({st} {body})")
        t.join()
        p, n = node(f"redis://127.0.0.1:{rport}/0", "slow2", "slow")
        procs.append(p)
        check(wait_for(lambda: up(n)), "node up again")
        t = busy_now(1.5)
        acks, events = asyncio.run(held_ack_across_upgrade(n))
        t.join()
        check(len(acks) == 1 and acks[0][0]["success"] is True and
              acks[0][0]["results"][0].get("type") == "published",
              f"Socket.IO: a publish's ACK held for Redis while the client upgrades from polling "
              f"to WebSocket comes on the WebSocket ({acks})")
        check([e[0] for e in events] == ["subscribed", "board:update"] and events[1][1] == {"v": 7},
              f"Socket.IO: a subscription waiting for its channel (Redis busy) while the client "
              f"upgrades is made on the WebSocket, which then gets the channel's updates ({events})")
    finally:
        stop_all(procs, redis, kill=True)


async def held_ack_across_upgrade(port):
    """Engine.IO v4 by hand, to order the steps: connect on polling, send a publish whose ACK
    waits for Redis (busy), upgrade to WebSocket, then read the WebSocket until the ACK."""
    import urllib.request
    base = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"

    def get(url):
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()

    def post(url, body):
        req = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={"Content-Type": "text/plain;charset=UTF-8"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read().decode()
    opened = json.loads(get(base)[1:])
    url = f"{base}&sid={opened['sid']}"
    post(url, "40")
    check(get(url).startswith("40{"), "Socket.IO over polling: CONNECT answered")
    post(url, '421["publish",{"channel":"notes","data":{"a":3}}]')
    post(url, '42["subscribe",{"channels":["board"],"organization_id":"o1"}]')
    acks, events = [], []
    ws_url = (f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket&sid={opened['sid']}")
    async with websockets.connect(ws_url) as ws:
        await ws.send("2probe")
        check(await asyncio.wait_for(ws.recv(), 5) == "3probe", "the probe answered")
        await ws.send("5")
        deadline = time.time() + 6
        published = False
        while time.time() < deadline and len(events) < 2:
            try:
                m = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.time()))
            except asyncio.TimeoutError:
                break
            if m == "2":
                await ws.send("3")
            elif m.startswith("431"):
                acks.append(json.loads(m[3:]))
            elif m.startswith("42["):
                events.append(json.loads(m[2:]))
            if events and events[0][0] == "subscribed" and not published:
                published = True
                r = await asyncio.to_thread(http, port, "/api/broadcast",
                                        {"channel": "board", "scope": {"org": "o1"},
                                         "event": "board:update", "data": {"v": 7}})
                check(r[0] == 200, f"published to the subscription's topic ({r})")
    return acks, events


def sse_across_nodes(a, b):
    """An SSE client on B, whose channel no WebSocket client of B uses, gets A's publication."""
    from http.client import HTTPConnection
    conn = HTTPConnection("127.0.0.1", b, timeout=10)
    conn.request("GET", "/sse?channel=notes&org=ssex")
    r = conn.getresponse()
    check(r.status == 200, f"SSE stream on B ({r.status})")
    events = []
    def read_event():
        ev = {}
        while True:
            line = r.fp.readline().decode().rstrip("\n")
            if not line:
                return ev
            k, _, v = line.partition(":")
            ev[k] = v.strip()
    # the stream's `subscribed` comes first; then A publishes
    while "subscribed" not in json.dumps(read_event()):
        pass
    st, body = http(a, "/api/broadcast", {"channel": "notes", "target": {"organization_id": "ssex"},
                                          "data": {"from": "A"}})
    deadline = time.time() + 5
    while time.time() < deadline:
        ev = read_event()
        if ev.get("data") and '"from":"A"' in ev["data"]:
            events.append(ev)
            break
    check(st == 200 and len(events) == 1,
          f"SSE client on B gets the publication of A ({events})")
    conn.close()


def auth_and_database(workdir):
    """AUTH with an ACL user and a password from the URL, SELECT of its database; a wrong
    password keeps the node up but without Redis."""
    rport = free_port()
    redis = start_redis(rport, workdir, "--requirepass", "topsecret",
                        "--user", "app", "on", ">app%pw", "~*", "&*", "+@all")
    procs = []
    try:
        (p1, n1), (p2, n2), (p3, n3) = [
            node(u, n, "auth") for u, n in
            ((f"redis://app:app%25pw@127.0.0.1:{rport}/3", "acl"),
             (f"redis://:topsecret@127.0.0.1:{rport}/3", "pw"),
             (f"redis://app:wrong@127.0.0.1:{rport}/3", "bad"))]
        procs += [p1, p2, p3]
        check(wait_for(lambda: up(n1) and up(n2)), "AUTH user:password and password alone: redis_up")

        async def across():
            s = await Sub(n2, "auth").open()
            await publish_ws(n1, "auth", [1, 2])
            await s.drain(until_count=2)
            check([u["data"]["v"] for u in s.updates] == [1, 2], "ACL user's node reaches the other")
            await s.ws.close()
        asyncio.run(across())
        # REST fallback on a node none of whose clients ever used the channel: it loads the
        # channel from Redis before answering
        st, body = http(n1, "/api/dashboard?org=auth")
        check(st == 200 and '"v": 2' in json.dumps(body),
              f"/api/dashboard on a node without subscribers: the cluster's latest value ({st} {body})")
        with socket.create_connection(("127.0.0.1", rport)) as s:
            s.sendall(b"AUTH topsecret\r\nSELECT 3\r\nEXISTS auth:epoch:current\r\n")
            time.sleep(0.2)
            check(s.recv(100).endswith(b":1\r\n"), "the keys are in database 3")
        time.sleep(0.5)
        check(not up(n3) and http(n3, "/api/health")[0] == 200,
              "wrong password: node serves, redis_up=false")
    finally:
        stop_all(procs, redis)


def tls(workdir):
    """rediss:// against a redis-server serving TLS only, with tls-auth-clients yes."""
    pki = os.path.join(workdir, "pki")
    os.makedirs(pki)
    make_pki(pki)
    f = lambda name: os.path.join(pki, name)
    rport = free_port()
    # also on 127.0.0.2, an address the server certificate does not name
    redis = subprocess.Popen([REDIS, "--port", "0", "--tls-port", str(rport),
                              "--bind", "127.0.0.1", "127.0.0.2",
                              "--save", "", "--appendonly", "no", "--dir", workdir,
                              "--tls-cert-file", f("server.pem"), "--tls-key-file", f("server.key"),
                              "--tls-ca-cert-file", f("ca.pem"), "--tls-auth-clients", "yes"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = []
    try:
        check(wait_for(lambda: socket.create_connection(("127.0.0.1", rport), 1).close() is None),
              "redis-server listens with TLS")
        client = ["--redis-cert", f("client.pem"), "--redis-key", f("client.key")]
        pa, a = start_rtd(RTD, "--engine", "redis", "--redis-url", f"rediss://localhost:{rport}/0",
                          "--redis-prefix", "tls", "--node-id", "tls-a", "--allow-publish",
                          "--redis-ca", f("ca.pem"), *client)
        pb, b = start_rtd(RTD, "--engine", "redis", "--redis-url", f"rediss://127.0.0.1:{rport}/0",
                          "--redis-prefix", "tls", "--node-id", "tls-b", "--allow-publish",
                          "--redis-ca", f("ca.pem"), *client)
        procs += [pa, pb]
        check(wait_for(lambda: up(a) and up(b)),
              "rediss:// with a verified certificate (by name and by IP) and a client certificate")

        async def across():
            s = await Sub(b, "tls").open()
            await publish_ws(a, "tls", [1, 2, 3])
            await s.drain(until_count=3)
            check([u["data"]["v"] for u in s.updates] == [1, 2, 3],
                  "over TLS: a publish on A reaches B once, in order")
            await s.ws.close()
        asyncio.run(across())
        check(http(a, "/api/health")[1].get("redis", "").startswith("rediss://")
              or "rediss://" in json.dumps(http(a, "/api/stats")[1]),
              "stats name the rediss:// endpoint")

        refused = [
            ("a CA that did not sign Redis's certificate",
             ["--redis-ca", f("other.pem"), *client], "certificate verify failed"),
            ("no client certificate", ["--redis-ca", f("ca.pem")], ""),
            ("a name the certificate does not carry",
             ["--redis-ca", f("ca.pem"), *client], "certificate verify failed"),
        ]
        for i, (what, extra, reason) in enumerate(refused):
            host = "127.0.0.2" if i == 2 else "localhost"
            url = f"rediss://{host}:{rport}/0"
            p, port = start_rtd(RTD, "--engine", "redis", "--redis-url", url,
                                "--redis-prefix", "tls", "--node-id", f"bad-{i}", *extra)
            procs.append(p)
            time.sleep(1.0)
            logged = "".join(p.log)
            check(not up(port) and http(port, "/api/health")[0] == 200
                  and "redis_down" in logged and (reason in logged),
                  f"rediss:// with {what}: node serves, redis_up=false, logged ({logged[-300:]!r})")

        # refused at start, before serving: (url, flags, exit code or None for any failure,
        # what the message must name)
        for what, url, extra, code, names in [
            ("--redis-cert without --redis-key", "rediss", ["--redis-cert", f("client.pem")], 2,
             "--redis-key"),
            ("--redis-ca with redis://", "redis", ["--redis-ca", f("ca.pem")], 2, "rediss://"),
            ("an unreadable --redis-ca", "rediss", ["--redis-ca", f("missing.pem")], None,
             "missing.pem")]:
            r = subprocess.run([RTD, "--port", "0", "--engine", "redis", "--redis-url",
                                f"{url}://localhost:{rport}/0", *extra],
                               capture_output=True, text=True, timeout=10)
            said = (r.stdout + r.stderr)[-200:]
            check((r.returncode == code if code else r.returncode != 0) and names in said,
                  f"{what}: refused at start ({r.returncode}: {said.strip()!r})")
    finally:
        stop_all(procs, redis)


def main():
    if not REDIS:
        print("skip: redis-server not installed (scripts/deps)")
        return 77
    workdir = tempfile.mkdtemp(prefix="rtpush-redis-")
    rport = free_port()
    redis = start_redis(rport, workdir)
    url = f"redis://127.0.0.1:{rport}/0"
    procs = []
    try:
        (pa, a), (pb, b), (pc, c) = [node(url, n, "t1") for n in ("node-a", "node-b", "node-c")]
        procs += [pa, pb, pc]
        check(all(wait_for(lambda p=p: up(p)) for p in (a, b, c)), "three nodes: redis_up in /health")
        asyncio.run(fan_out_exactly_once(a, b, c))
        asyncio.run(move_and_recover(a, b, c))
        # every client has left: the nodes unsubscribe (a node subscribes only to what its
        # clients use); the tests below subscribe again and reload
        check(wait_for(lambda: numsub(rport, "t1:c:kpi") == 0),
              f"nodes unsubscribe from a channel their clients left ({numsub(rport, 't1:c:kpi')})")

        check(wait_for(lambda: len(http(a, "/api/stats")[1]["stats"]["cluster"]) == 3),
              "/api/stats: cluster view with 3 nodes")
        def ids_on(port):
            return sorted(n["node_id"] for n in http(port, "/api/stats")[1]["stats"]["cluster"])
        ids = ["node-a", "node-b", "node-c"]
        check(wait_for(lambda: ids_on(b) == ids and ids_on(c) == ids),
              f"cluster view on B and C names every node ({ids_on(b)}, {ids_on(c)})")
        if RTCTL:
            r = subprocess.run([RTCTL, "--url", f"http://127.0.0.1:{a}", "stats", "--cluster"],
                               capture_output=True, text=True, timeout=10)
            check(r.returncode == 0 and all(n in r.stdout for n in ids),
                  "rtctl stats --cluster lists every node")
        metrics = http(a, "/metrics")[1]
        check("rtpush_redis_up 1" in metrics, "/metrics: rtpush_redis_up 1")

        # two more nodes with a small history window, in their own key space
        (pd, d), (pe, e) = [node(url, n, "t2", history=20) for n in ("node-d", "node-e")]
        procs += [pd, pe]
        check(wait_for(lambda: up(d) and up(e)), "nodes D, E up")
        asyncio.run(window_exceeded(d, e))
        for p in (pd, pe):
            p.terminate()
            p.wait(10)

        (pf, f), (pg, g) = [start_rtd(RTD, "--engine", "redis", "--redis-url", url, "--redis-prefix",
                                      "acks", "--node-id", n, "--ack-resend", "0.4",
                                      "--join-leave", "room")
                            for n in ("node-f", "node-g")]
        procs += [pf, pg]
        check(wait_for(lambda: up(f) and up(g)), "nodes F, G up")
        asyncio.run(acks_across_nodes(f, g))
        sse_across_nodes(f, g)
        asyncio.run(relayed_across_nodes(f, g))
        late = lambda: start_rtd(RTD, "--engine", "redis", "--redis-url", url, "--redis-prefix",
                                 "acks", "--node-id", "node-h")
        asyncio.run(alerts_across_nodes(f, g, late, rport))
        asyncio.run(history_across_nodes(f, g))
        for p in (pf, pg):
            p.terminate()
            p.wait(10)

        asyncio.run(kill_during_publishing(pa, a, b, c))
        pa.wait(5)

        # Redis restarted (empty: no persistence): nodes notice, reconnect, deliver again
        redis.kill()
        redis.wait(5)
        check(wait_for(lambda: not up(b), 10), "Redis gone: redis_up=false in /health")
        check(http(b, "/api/stats")[1]["stats"]["redis_up"] is False, "redis_up=false in /api/stats")
        check("rtpush_redis_up 0" in http(b, "/metrics")[1], "/metrics: rtpush_redis_up 0")
        st, body = http(b, "/api/broadcast", {"channel": "kpi", "data": {"x": 1}})
        check(st == 503 and body.get("error", {}).get("code", body.get("code")) == "ENGINE_UNAVAILABLE"
              or st == 503, f"publish without Redis: 503 ({st})")
        check(http(b, "/api/health")[0] == 200, "node without Redis keeps serving")
        st, body = http(b, "/api/broadcast/alert", {"organization_id": "acme", "severity": "low",
                                                    "message": "while Redis is down"})
        check(st == 503 and body.get("error", {}).get("code") == "ENGINE_UNAVAILABLE",
              f"an alert step without Redis: 503 ENGINE_UNAVAILABLE, not taken alone ({st} {body})")
        check(http(b, "/api/alerts?org=acme")[1].get("total_count") == 0 or
              all(a["message"] != "while Redis is down" for a in http(b, "/api/alerts?org=acme")[1]["alerts"]),
              "... and the node's book does not have it")
        redis = start_redis(rport, workdir)
        check(wait_for(lambda: up(b) and up(c), 15), "Redis back: nodes reconnect")
        asyncio.run(after_redis_restart(c, b))
        auth_and_database(workdir)
        tls(workdir)
        slow_redis(workdir)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        redis.kill()
        redis.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)
    print("FAILED: " + ", ".join(failures) if failures else "all ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
