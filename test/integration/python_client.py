#!/usr/bin/python3
"""Independent-client test: Python `websockets` (Debian's python3-websockets) against rtd.

Starts rtd on a free loopback port with its demo data, drives the protocol with a client
that shares no code with rtpush, then stops rtd with SIGTERM and checks the clean exit.
Usage: python_client.py PATH_TO_RTD
"""
import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request

import websockets

from rtdtest import check, failures, start_rtd

RTD = sys.argv[1]


async def recv_type(ws, want, limit=50):
    for _ in range(limit):
        m = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if m["type"] == want:
            return m
    raise AssertionError(f"no {want} message")


async def main(port):
    url = f"ws://127.0.0.1:{port}/ws"
    async with websockets.connect(url) as ws:
        hello = json.loads(await ws.recv())
        check(hello["type"] == "connected" and hello["clientId"], "connected with clientId")
        check(hello["heartbeatInterval"] == 1000, "heartbeatInterval in ms")

        await ws.send(json.dumps({"type": "subscribe", "channel": "kpi",
                                  "scope": {"org": "acme", "dept": "support", "queue": "email"}, "id": "s1"}))
        ack = await recv_type(ws, "subscribed")
        check(ack["id"] == "s1" and ack["topic"] == "kpi:org:acme:dept:support:queue:email", "subscribed ack")
        first = await recv_type(ws, "initial")
        second = await recv_type(ws, "initial")
        check(first["phase"] == "kpis" and second["phase"] == "complete", "initial: kpis before complete")
        check("health_score" in first["data"], "kpis carry health_score")
        upd = await recv_type(ws, "update")
        check(upd["event"] == "kpi:update" and upd["seq"] > first["seq"], "live update after initial")

        await ws.send("{broken")
        err = await recv_type(ws, "error")
        check(err["code"] == "INVALID_MESSAGE", "malformed JSON -> INVALID_MESSAGE")
        await ws.send(json.dumps({"type": "ping", "id": 42}))
        pong = await recv_type(ws, "pong")
        check(pong["id"] == 42, "ping -> pong with id")
        latency = await asyncio.wait_for(await ws.ping(), 5)
        check(latency is None or latency >= 0, "WebSocket ping answered")
        hb = await recv_type(ws, "heartbeat")
        check(hb["clients"] >= 1, "heartbeat with client count")

    # REST broadcast reaches a WebSocket subscriber
    async with websockets.connect(url) as ws:
        await recv_type(ws, "connected")
        await ws.send(json.dumps({"type": "subscribe", "channel": "notifications", "scope": {"org": "acme"}}))
        await recv_type(ws, "subscribed")
        body = json.dumps({"event": "system:maintenance", "channel": "notifications",
                           "data": {"message": "maintenance in 10 minutes"},
                           "target": {"organization_id": "acme"}, "priority": "urgent"}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/broadcast", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            check(json.load(r)["success"] is True, "POST /api/broadcast")
        m = await recv_type(ws, "update")
        check(m["event"] == "system:maintenance" and m["priority"] == "urgent", "broadcast delivered")

    # REST errors are JSON with codes
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/nope", timeout=5)
        check(False, "404 for unknown path")
    except urllib.error.HTTPError as e:
        check(e.code == 404 and json.load(e)["error"]["code"] == "NOT_FOUND", "404 JSON error")

    # Oversized message: close 1009
    async with websockets.connect(url, max_size=None) as ws:
        await recv_type(ws, "connected")
        await ws.send("x" * 70000)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except websockets.exceptions.ConnectionClosed as e:
            check(e.rcvd is not None and e.rcvd.code == 1009, f"oversized -> close 1009 (got {e.rcvd})")

    # SIGTERM closes connected clients with 1001
    ws = await websockets.connect(url)
    await recv_type(ws, "connected")
    return ws


async def wait_close(ws):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except websockets.exceptions.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None


proc, port = start_rtd(RTD, "--demo", "--demo-interval", "300", "--max-message-size", "65536",
                       "--heartbeat-interval", "1")
try:
    loop = asyncio.new_event_loop()
    ws = loop.run_until_complete(asyncio.wait_for(main(port), 60))
    proc.terminate()
    code = loop.run_until_complete(wait_close(ws))
    check(code == 1001, f"shutdown -> close 1001 (got {code})")
    rc = proc.wait(timeout=15)
    check(rc == 0, f"rtd exits 0 after SIGTERM (got {rc})")
finally:
    if proc.poll() is None:
        proc.kill()

sys.exit(1 if failures else 0)
