#!/usr/bin/python3
"""A client that never reads while 1000 messages/s are published (docs/security.md).

rtd runs with the drop-oldest queue policy, so the never-reading client stays connected for
the whole run and its outbound queue sits at its limit: the worst case for memory. The client
is a raw socket with a tiny SO_RCVBUF that does the handshake and the subscribe and then
never calls recv again, so the server really finds it not reading (TCP window closed).

Checks: rtd's RSS (VmRSS of /proc/<pid>/status) grows by no more than the history and the
never-reading client's queue can hold, and stays flat once that queue is full; the server did
drop frames for that client (the policy was exercised, so the client truly stopped reading);
a well-behaved client on the same server receives every publication, in order, no gap.
Usage: never_reading_client.py PATH_TO_RTD
"""
import asyncio
import base64
import json
import os
import socket
import sys
import time
import urllib.request

import websockets

from rtdtest import check, failures, start_rtd

RTD = sys.argv[1]
RATE = 1000          # publications per second
SECONDS = 10         # of publishing
QUEUE_LIMIT = 1024   # frames queued per client (rtd --queue-limit)
PAD = "x" * 900      # about 1 KiB per frame
MIB = 1024 * 1024


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats", timeout=5) as r:
        return json.loads(r.read())


def find_number(obj, key):
    """The value of `key` anywhere in a JSON document (stats nest their counters)."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            n = find_number(v, key)
            if n is not None:
                return n
    return None


def masked_text_frame(text):
    payload = text.encode()
    key = os.urandom(4)
    assert len(payload) < 126
    return (bytes([0x81, 0x80 | len(payload)]) + key +
            bytes(b ^ key[i % 4] for i, b in enumerate(payload)))


def never_reading_client(port):
    """Handshake and subscribe, then never read again. Returns the socket (kept open)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: sets the window
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)  # byte by byte: nothing past the response head is consumed
        if not chunk:
            raise RuntimeError("closed during the handshake")
        head += chunk
    check(head.startswith(b"HTTP/1.1 101"), "never-reading client: upgraded")
    s.sendall(masked_text_frame(json.dumps({"type": "subscribe", "channel": "flood"})))
    return s


async def good_client(url, expected, ready):
    """Receives every update in seq order; returns how many arrived."""
    got = 0
    async with websockets.connect(url, max_queue=None, max_size=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": "flood", "id": "g"}))
        ready.set()
        deadline = time.monotonic() + SECONDS + 30
        while got < expected() and time.monotonic() < deadline:
            m = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if m["type"] != "update":
                continue
            if m["seq"] != got + 1:
                check(False, f"good client: seq {m['seq']} after {got} (a gap or reorder)")
                return got
            got += 1
    return got


async def publisher(url, sent):
    """Publishes RATE per second for SECONDS, on a fixed schedule; drains its acks."""
    async with websockets.connect(url, max_queue=None) as ws:
        async def drain():
            async for _ in ws:
                pass
        drainer = asyncio.create_task(drain())
        t0 = time.monotonic()
        total = RATE * SECONDS
        while sent[0] < total:
            due = min(total, int((time.monotonic() - t0) * RATE) + 1)
            while sent[0] < due:
                sent[0] += 1
                await ws.send(json.dumps({"type": "publish", "channel": "flood",
                                          "data": {"i": sent[0], "pad": PAD}}))
            await asyncio.sleep(0.005)
        took = time.monotonic() - t0
        await asyncio.sleep(0.5)
        drainer.cancel()
        return took


async def main(proc, port):
    url = f"ws://127.0.0.1:{port}/ws"
    slow = never_reading_client(port)
    ready = asyncio.Event()
    sent = [0]
    total = RATE * SECONDS
    good = asyncio.create_task(good_client(url, lambda: total, ready))
    await ready.wait()
    await asyncio.sleep(0.3)
    base = rss_bytes(proc.pid)
    samples = []  # (seconds since start, rss, dropped)
    pub = asyncio.create_task(publisher(url, sent))
    t0 = time.monotonic()
    while not pub.done():
        await asyncio.sleep(0.5)
        dropped = find_number(await asyncio.to_thread(stats, port), "dropped_messages") or 0
        samples.append((time.monotonic() - t0, rss_bytes(proc.pid), dropped))
    took = await pub
    got = await good
    slow.close()

    rate = total / took
    print(f"published {total} in {took:.1f}s ({rate:.0f}/s); rss base {base / MIB:.1f} MiB, "
          f"max {max(r for _, r, _ in samples) / MIB:.1f} MiB", flush=True)
    for t, r, d in samples:
        print(f"  t={t:5.1f}s rss={r / MIB:6.1f} MiB dropped={d}", flush=True)
    check(rate >= 0.8 * RATE, f"published at about {RATE}/s ({rate:.0f}/s)")
    check(got == total, f"good client received all {total} updates in order ({got})")
    dropped_end = samples[-1][2]
    check(dropped_end > 0, f"frames dropped for the never-reading client ({dropped_end})")
    # What may grow: the topic's history (1000 frames) and the never-reading client's queue
    # (QUEUE_LIMIT frames), about 1 KiB each plus bookkeeping, and allocator slack.
    bound = (1000 + QUEUE_LIMIT) * 2048 + 4 * MIB
    growth = max(r for _, r, _ in samples) - base
    check(growth <= bound,
          f"rss growth {growth / MIB:.1f} MiB within history + queue ({bound / MIB:.1f} MiB)")
    # Flat once the queue is full: from a second after the first drop to the end.
    full = [(t, r) for t, r, d in samples if d > 0]
    if full:
        t_full = full[0][0] + 1.0
        later = [r for t, r in full if t >= t_full]
        if len(later) >= 4:
            drift = max(later) - later[0]
            check(drift <= MIB,
                  f"rss flat while the queue is full: +{drift / MIB:.2f} MiB over "
                  f"{full[-1][0] - t_full:.0f}s")
        else:
            check(False, "the queue filled too late to watch rss stay flat")


proc, port = start_rtd(RTD, "--threads", "1", "--allow-publish", "--max-messages-per-second", "0",
                       "--queue-policy", "drop-oldest", "--queue-limit", str(QUEUE_LIMIT))
try:
    asyncio.run(asyncio.wait_for(main(proc, port), 90))
finally:
    proc.terminate()
    proc.wait(10)
sys.exit(1 if failures else 0)
