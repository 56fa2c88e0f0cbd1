#!/usr/bin/python3
"""The examples, run: embed_beast (an application's Beast HTTP server handing WebSocket and
SSE connections to rtpush), custom_source (a data source published on demand) and
subscriber_client (rtpush::client reconnecting after its server restarts).
Usage: examples.py EMBED_BEAST CUSTOM_SOURCE SUBSCRIBER_CLIENT
"""
import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import websockets  # Debian python3-websockets (/usr/bin/python3)

from rtdtest import check, failures

EMBED, SOURCE, CLIENT = sys.argv[1:4]


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, limit=15):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


async def ws_subscribe(port, channel):
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": channel, "scope": {"org": "acme"}}))
        types, data = [], None
        while data is None:
            m = json.loads(await asyncio.wait_for(ws.recv(), 10))
            types.append(m["type"])
            if m["type"] in ("initial", "update"):
                data = m["data"]
        return types, data


def embed():
    proc = subprocess.Popen([EMBED, "0"], stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(proc.stdout.readline())["port"]
        status, ctype, body = get(f"http://127.0.0.1:{port}/hello")
        check(status == 200 and body == "hello from the application\n", "embed: the application's own route")
        status, ctype, body = get(f"http://127.0.0.1:{port}/api/health")
        check(status == 200 and json.loads(body)["status"] == "ok", "embed: /api/health forwarded to rtpush")
        types, data = asyncio.run(ws_subscribe(port, "kpi"))
        check(types[:3] == ["connected", "subscribed", "initial"] and data == {"health_score": 97},
              f"embed: WebSocket handed to rtpush: {types} {data}")
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /sse?channel=kpi&org=acme HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while b'"initial"' not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
        check(got.startswith(b"HTTP/1.1 200") and b"text/event-stream" in got and b'"health_score":97' in got,
              "embed: an SSE stream handed to rtpush")
        status, _, body = get(f"http://127.0.0.1:{port}/api/connections")
        check(status == 200 and json.loads(body)["success"], "embed: /api/connections")
        proc.send_signal(signal.SIGINT)
        check(proc.wait(timeout=15) == 0, "embed: stops on SIGINT")
    finally:
        if proc.poll() is None:
            proc.kill()


def source_and_client():
    port = free_port()
    server = subprocess.Popen([SOURCE, str(port)])
    client = None
    try:
        check(wait_port(port), "custom_source listens")
        types, data = asyncio.run(ws_subscribe(port, "backlog"))
        check(isinstance(data, dict) and "total_items" in data and "changes" in data,
              f"custom_source: its kpis phase arrives once subscribed (on demand): {data}")
        client = subprocess.Popen([CLIENT, f"ws://127.0.0.1:{port}/ws"], stdout=subprocess.PIPE, text=True)
        lines = []
        threading.Thread(target=lambda: [lines.append(l.rstrip()) for l in client.stdout], daemon=True).start()

        def wait_line(pred, limit=15):
            end = time.time() + limit
            while time.time() < end:
                for l in list(lines):
                    if pred(l):
                        return l
                time.sleep(0.05)
            return None

        check(wait_line(lambda l: l.startswith("# subscribed")) is not None, "subscriber_client: subscribed")
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/broadcast", method="POST",
                                     data=json.dumps({"channel": "kpi", "target": {"organization_id": "acme"},
                                                      "data": {"health_score": 61}}).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()
        check(wait_line(lambda l: l.startswith("kpi:org:acme seq 1:") and "61" in l) is not None,
              "subscriber_client prints the update")
        server.send_signal(signal.SIGINT)
        check(server.wait(timeout=15) == 0, "custom_source stops on SIGINT")
        check(wait_line(lambda l: l.startswith("# reconnecting")) is not None, "subscriber_client: reconnecting")
        # Counted before the restart: the client may reconnect before wait_port returns.
        n = len([l for l in lines if l.startswith("# subscribed")])
        server = subprocess.Popen([SOURCE, str(port)])
        check(wait_port(port), "custom_source restarted on the same port")
        # The client's backoff doubles from 0.5 s with full jitter while the server is down (up
        # to 30 s): after a slow stop on a loaded machine its next try can be 16 s away.
        end = time.time() + 45
        while time.time() < end and len([l for l in lines if l.startswith("# subscribed")]) < n + 2:
            time.sleep(0.05)
        check(len([l for l in lines if l.startswith("# subscribed")]) >= n + 2,
              "subscriber_client reconnected and subscribed again (kpi, alerts)")
    finally:
        for p in (client, server):
            if p and p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


embed()
source_and_client()
print(f"{len(failures)} failure(s)" if failures else "all passed")
sys.exit(1 if failures else 0)
