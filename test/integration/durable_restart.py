#!/usr/bin/python3
"""Nothing answered is lost on restart (docs/operations.md, "Durable state"): rtd with
--data-dir takes REST publications, is killed with SIGKILL, and restarts on the same directory
with the same epoch, the latest values (/api/dashboard, `initial`), the history a client recovering
with its offset gets replayed, GET /api/history and the `history` message, the alerts with
their states, and the broadcasts a client has not acked (re-sent when it says hello). Publications answered while a burst was
being written when the process was killed are all there. A corrupt database or an unusable
directory stops rtd at start-up with a message, never a memory-only run.
Usage: durable_restart.py PATH_TO_RTD
"""
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import websockets

from rtdtest import check, failures, start_rtd

RTD = sys.argv[1]


def http(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def publish(port, org, value):
    return http(port, "POST", "/api/broadcast",
                {"channel": "kpi", "target": {"organization_id": org}, "data": {"v": value}})


async def within(ws, seconds):
    """Each message the connection receives within `seconds`, as it comes."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            yield json.loads(await asyncio.wait_for(ws.recv(), end - time.monotonic()))
        except asyncio.TimeoutError:
            return


async def subscribe(port, org, recover=None):
    """(subscribed message, the messages after it within a second)."""
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws")
    await asyncio.wait_for(ws.recv(), 5)  # connected
    msg = {"type": "subscribe", "channel": "kpi", "scope": {"org": org}, "id": 1}
    if recover:
        msg["recover"] = recover
    await ws.send(json.dumps(msg))
    subscribed, rest = None, []
    async for m in within(ws, 1.0):
        if m.get("type") == "subscribed":
            subscribed = m
        elif m.get("type") in ("initial", "update"):
            rest.append(m)
    await ws.close()
    return subscribed, rest


async def ack_client(port, client_id, ack=False):
    """Says hello as `client_id` and subscribes to org `ackorg`'s notices; returns (the hello
    answer, the updates with an ackId within a second), acking them when `ack`."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await asyncio.wait_for(ws.recv(), 5)  # connected
        await ws.send(json.dumps({"type": "hello", "clientId": client_id, "id": "h"}))
        await ws.send(json.dumps({"type": "subscribe", "channel": "notices",
                                  "scope": {"org": "ackorg"}, "id": "s"}))
        hello, updates, errors = None, [], []
        async for m in within(ws, 1.0):
            if m.get("type") == "hello":
                hello = m
            elif m.get("type") == "update" and "ackId" in m:
                updates.append(m)
                if ack:
                    await ws.send(json.dumps({"type": "ack", "id": m["ackId"]}))
            elif m.get("type") == "error":
                errors.append(m)
        return hello, updates, errors


async def ws_requests(port, messages):
    """The answer to each message, sent one after the other on one WebSocket connection."""
    answers = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await asyncio.wait_for(ws.recv(), 5)  # connected
        for msg in messages:
            await ws.send(json.dumps(msg))
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if m.get("id") == msg.get("id"):
                    answers.append(m)
                    break
    return answers


def kill9(proc):
    proc.kill()  # SIGKILL: no flush, no shutdown
    proc.wait(timeout=10)


def main():
    work = tempfile.mkdtemp(prefix="rtpush-durable-")
    data = os.path.join(work, "data")
    procs = []

    def start(*args):
        proc, port = start_rtd(RTD, "--data-dir", data, "--history-size", "20000", *args)
        procs.append(proc)
        return proc, port

    try:
        proc, port = start()
        st, health = http(port, "GET", "/api/health")
        check(st == 200 and health.get("engine") == "sqlite", f"/api/health names the store ({health})")
        answers = [publish(port, "acme", i) for i in range(1, 4)]
        check(all(st == 200 for st, _ in answers), "three publications answered 200")
        epoch = answers[0][1]["epoch"]
        sub, initial = asyncio.run(subscribe(port, "acme"))
        check(sub and sub.get("epoch") == epoch and initial and initial[-1]["seq"] == 3,
              f"a client sees seq 3 of epoch {epoch}")
        # Alerts: the book is kept with the publications (docs/operations.md, "Durable state").
        alert = {"organization_id": "acme", "severity": "low", "message": "kept", "escalate_after": 3600}
        st, a1 = http(port, "POST", "/api/broadcast/alert", alert)
        st2, a2 = http(port, "POST", "/api/broadcast/alert", dict(alert, message="acked"))
        http(port, "POST", f"/api/alerts/{a2['alert']['alert_id']}/acknowledge", {"by": "ann"})
        check(st == 200 and st2 == 200, "two alerts triggered, one acknowledged")
        # Acknowledged delivery: two clients get a broadcast that must be acked; one acks it.
        async def two_ack_clients():
            lazy = asyncio.create_task(ack_client(port, "lazy-1"))
            eager = asyncio.create_task(ack_client(port, "eager-1", ack=True))
            await asyncio.sleep(0.3)  # both subscribed
            res = http(port, "POST", "/api/broadcast",
                       {"channel": "notices", "target": {"organization_id": "ackorg"},
                        "data": {"n": 1}, "requires_ack": True})
            return res, await lazy, await eager
        (st, sent), lazy, eager = asyncio.run(two_ack_clients())
        ack_id = sent.get("id")
        check(st == 200 and ack_id and [u["ackId"] for u in lazy[1]] == [ack_id] and
              [u["ackId"] for u in eager[1]] == [ack_id], f"a requires_ack broadcast reached both ({sent})")
        time.sleep(0.3)  # the store commits each client's standing within milliseconds
        latencies = []
        for i in range(4, 8):
            t0 = time.monotonic()
            st, res = publish(port, "acme", i)
            latencies.append(time.monotonic() - t0)
            check(st == 200 and res["seq"] == i, f"publication {i} answered with seq {i}")
        print(f"info REST publish answered after commit: max {max(latencies) * 1000:.1f} ms",
              flush=True)
        kill9(proc)

        proc, port = start()
        # The client that did not ack gets it again once it says who it is; the other does not.
        hello, again, errors = asyncio.run(ack_client(port, "lazy-1", ack=True))
        check(hello and hello.get("pending") == 1 and [u["ackId"] for u in again] == [ack_id] and
              again[0].get("redelivered") is True and again[0]["data"] == {"n": 1} and not errors,
              f"after kill -9 the un-acked broadcast is re-sent and its ack taken ({hello}, {again}, {errors})")
        hello, again, _ = asyncio.run(ack_client(port, "eager-1"))
        check(hello and hello.get("pending") == 0 and not again,
              f"... and not to the client that had acked it ({hello}, {again})")
        st, report = http(port, "GET", f"/api/broadcast/{ack_id}")
        check(st == 200 and report.get("targeted") == 2 and report.get("acked") == 2,
              f"its delivery report spans the restart ({report})")
        st, kpis = http(port, "GET", "/api/dashboard?channel=kpi&org=acme")
        check(st == 200 and kpis.get("epoch") == epoch, f"the epoch is kept ({kpis.get('epoch')})")
        check(st == 200 and kpis.get("data") == {"v": 7}, f"/api/dashboard has the last value ({kpis})")
        st, kept = http(port, "GET", "/api/alerts?org=acme")
        by_id = {a["alert_id"]: a for a in kept.get("alerts", [])}
        k1, k2 = by_id.get(a1["alert"]["alert_id"]), by_id.get(a2["alert"]["alert_id"])
        check(st == 200 and k1 and k1["status"] == "pending" and k1["message"] == "kept" and
              k2 and k2["status"] == "acknowledged" and k2["acknowledged_by"] == "ann",
              f"the alerts survive kill -9 with their states ({kept})")
        st, a3 = http(port, "POST", "/api/broadcast/alert", dict(alert, message="new"))
        check(st == 200 and a3["alert"]["alert_id"] not in by_id,
              f"a new alert after the restart gets a new id ({a3['alert']['alert_id']})")
        st, ans = http(port, "POST", f"/api/alerts/{a1['alert']['alert_id']}/resolve", {"by": "bob"})
        check(st == 200 and ans["alert"]["status"] == "resolved", "a restored alert goes on with its lifecycle")
        sub, replay = asyncio.run(subscribe(port, "acme", {"epoch": epoch, "offset": 3}))
        check(sub and sub.get("recovered") is True, f"recovery with offset 3 succeeds ({sub})")
        check([m["seq"] for m in replay] == [4, 5, 6, 7] and
              all(m["type"] == "update" for m in replay) and
              [m["data"]["v"] for m in replay] == [4, 5, 6, 7],
              f"the missed 4..7 are replayed ({[(m['type'], m['seq']) for m in replay]})")
        st, page = http(port, "GET", "/api/history?channel=kpi&org=acme&limit=5")
        check(st == 200 and [i["seq"] for i in page["items"]] == [7, 6, 5, 4, 3] and
              page.get("next_cursor") is not None, f"/api/history newest first ({page.get('items')})")
        st, page2 = http(port, "GET",
                         f"/api/history?channel=kpi&org=acme&limit=5&cursor={page['next_cursor']}")
        check(st == 200 and [i["seq"] for i in page2["items"]] == [2, 1] and
              page2["next_cursor"] is None, "its next page holds 2, 1 and is the last")
        # The same pages over WebSocket: the `history` message (docs/protocol.md, "History").
        first = {"type": "history", "id": "h1", "channel": "kpi", "scope": {"org": "acme"}, "limit": 5}
        h1, = asyncio.run(ws_requests(port, [first]))
        h2, h3, h4 = asyncio.run(ws_requests(port, [
            dict(first, id="h2", cursor=h1.get("next_cursor")),
            dict(first, id="h3", limit=3, order="oldest"),
            dict(first, id="h4", limit=0)]))
        check(h1["type"] == "history" and [i["seq"] for i in h1["items"]] == [7, 6, 5, 4, 3] and
              h1["epoch"] == epoch and h1["next_cursor"] is not None,
              f"WebSocket history: the same first page ({[i['seq'] for i in h1.get('items', [])]})")
        check([i["seq"] for i in h2["items"]] == [2, 1] and h2["next_cursor"] is None,
              f"... its next page with the cursor ({[i['seq'] for i in h2.get('items', [])]})")
        check(h3["order"] == "oldest" and [i["seq"] for i in h3["items"]] == [1, 2, 3],
              f"... oldest first ({[i['seq'] for i in h3.get('items', [])]})")
        check(h4["type"] == "error" and h4["code"] == "INVALID_MESSAGE" and "limit" in h4["message"],
              f"... a bad limit is an error with its id ({h4})")

        # That run was killed: what it delivered without committing may have had seqs 8, 9...
        # The next publication skips them, and recovering across the skip gives a snapshot.
        st, res = publish(port, "acme", 8)
        check(st == 200 and res["seq"] > 8, f"after a crash a topic's next seq skips ({res})")
        sub, rest = asyncio.run(subscribe(port, "acme", {"epoch": epoch, "offset": 7}))
        check(sub and sub.get("recovered") is False and sub.get("reason") == "history_lost" and
              [m["type"] for m in rest] == ["initial"] and rest[0]["data"] == {"v": 8},
              f"recovering across the skip: history_lost and the current value ({sub})")
        st, bad = http(port, "GET", "/api/history?channel=kpi&limit=0")
        check(st == 400 and bad["error"].get("field") == "limit", f"a bad limit is a 400 ({bad})")
        # A burst from several threads, killed while batches are being written: whatever was
        # answered 200 must be there after the restart.
        answered, lock, stop = [], threading.Lock(), threading.Event()

        def burst(k):
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    st, res = publish(port, "burst", k * 100000 + i)
                except Exception:  # the server is gone
                    return
                if st == 200:
                    with lock:
                        answered.append((res["seq"], k * 100000 + i))

        threads = [threading.Thread(target=burst, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        kill9(proc)
        stop.set()
        for t in threads:
            t.join(timeout=10)
        check(len(answered) > 50, f"the burst got answers before the kill ({len(answered)})")

        proc, port = start()
        seen = {}
        cursor = None
        while True:
            q = "/api/history?channel=kpi&org=burst&limit=1000&order=oldest"
            st, page = http(port, "GET", q + (f"&cursor={cursor}" if cursor else ""))
            if st != 200:
                break
            for it in page["items"]:
                seen[it["seq"]] = it["data"]["v"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        lost = [s for s, v in answered if seen.get(s) != v]
        check(not lost, f"all {len(answered)} answered burst publications survived (lost {lost[:5]})")
        seqs = sorted(seen)
        check(seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else False,
              "the stored burst has no gap in its seqs")

        # A clean stop commits and exits 0; the next start has everything and skips nothing.
        st, last = publish(port, "acme", 9)
        proc.terminate()
        check(proc.wait(timeout=20) == 0, "SIGTERM: rtd exits 0")
        proc, port = start("--fsync", "commit")  # an fsync per commit: the same guarantees
        st, kpis = http(port, "GET", "/api/dashboard?channel=kpi&org=acme")
        check(kpis.get("data") == {"v": 9} and kpis.get("epoch") == epoch,
              "after a clean stop the last value and the epoch are there")
        st, res = publish(port, "acme", 10)
        check(st == 200 and res["seq"] == last["seq"] + 1,
              f"after a clean stop seqs continue ({last['seq']} then {res.get('seq')})")
        kill9(proc)
        proc, port = start()
        st, kpis = http(port, "GET", "/api/dashboard?channel=kpi&org=acme")
        check(kpis.get("data") == {"v": 10}, f"--fsync commit: the answered 10 survives kill -9 ({kpis})")
        proc.terminate()
        proc.wait(timeout=20)
        r = subprocess.run([RTD, "--host", "127.0.0.1", "--port", "0", "--data-dir", data,
                            "--fsync", "sometimes"], capture_output=True, text=True, timeout=30)
        check(r.returncode == 2 and "--fsync must be checkpoint or commit" in r.stderr,
              f"a wrong --fsync: exit {r.returncode}, {r.stderr.strip()!r}")

        # Start-up errors: a clear message and a non-zero exit, never a memory-only server.
        bad = os.path.join(work, "corrupt")
        os.makedirs(bad)
        with open(os.path.join(bad, "rtpush.db"), "wb") as f:
            f.write(b"this is not a database" * 500)
        r = subprocess.run([RTD, "--host", "127.0.0.1", "--port", "0", "--data-dir", bad],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode != 0 and "rtpush.db" in r.stderr and "corrupt" in r.stderr,
              f"a corrupt database: exit {r.returncode}, {r.stderr.strip()!r}")
        blocker = os.path.join(work, "a-file")
        open(blocker, "w").close()
        r = subprocess.run([RTD, "--host", "127.0.0.1", "--port", "0", "--data-dir",
                            os.path.join(blocker, "data")], capture_output=True, text=True,
                           timeout=30)
        check(r.returncode != 0 and "data directory" in r.stderr,
              f"an unusable directory: exit {r.returncode}, {r.stderr.strip()!r}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)


main()
