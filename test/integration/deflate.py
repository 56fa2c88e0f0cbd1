#!/usr/bin/python3
"""permessage-deflate end to end against rtd --deflate: negotiation with Python websockets
(which offers it by default), frames checked byte by byte through a raw socket (RSV1 on large
messages, none under the threshold), a broadcast compressed once for all deflate
subscribers, compressed client messages, a compression bomb (close 1009, memory flat, the
other clients unaffected), corrupt compressed data (1007), Node `ws` with perMessageDeflate,
and no compression without --deflate.
Usage: deflate.py PATH_TO_RTD [WS_MODULE_DIR]
"""
import asyncio
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import urllib.request
import zlib

import websockets

from rtdtest import FrameReader, check, failures, start_rtd

RTD = sys.argv[1]
WS_DIR = sys.argv[2] if len(sys.argv) > 2 else ""
HERE = os.path.dirname(os.path.abspath(__file__))
NEGOTIATED = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
THRESHOLD = 512


class RawClient(FrameReader):
    """A WebSocket client on a plain socket that shows each frame's header bits."""

    def __init__(self, port, offer="permessage-deflate; client_max_window_bits"):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               % key)
        if offer:
            req += "Sec-WebSocket-Extensions: %s\r\n" % offer
        self.s.sendall((req + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.s.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.headers = {}
        for line in head.decode().split("\r\n")[1:]:
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()

    def message(self):
        """(compressed, text) of the next text message, skipping pings; close: (None, code)."""
        while True:
            fin, rsv1, op, payload = self.frame()
            if op == 0x8:
                return None, struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
            if op != 0x1:
                continue
            if rsv1:
                text = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
                return True, text.decode()
            return False, payload.decode()

    def send(self, payload, rsv1=False, op=0x1):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | (0x40 if rsv1 else 0) | op])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send_json(self, obj):
        self.send(json.dumps(obj).encode())

    def until(self, mtype):
        while True:
            compressed, text = self.message()
            if compressed is None:
                raise EOFError("closed %s" % text)
            m = json.loads(text)
            if m.get("type") == mtype:
                return compressed, m


def stats(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/api/stats" % port, timeout=5) as r:
        return json.loads(r.read())["stats"]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def big_data(i, size=6000):
    # JSON with repetition, as dashboards' `complete` payloads have.
    return {"i": i, "rows": [{"queue": "email", "waiting": j % 7, "agents": 12}
                             for j in range(size // 45)]}


def publish_msg(org, data):
    return json.dumps({"type": "publish", "channel": "kpi", "scope": {"org": org}, "data": data})


async def recv_type(ws, mtype, timeout=10):
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if m.get("type") == mtype:
            return m


async def subscribe(ws, org):
    await recv_type(ws, "connected")
    await ws.send(json.dumps({"type": "subscribe", "channel": "kpi", "scope": {"org": org}}))
    await recv_type(ws, "subscribed")


async def negotiation_and_sharing(port):
    url = "ws://127.0.0.1:%d/ws" % port
    subs = [await websockets.connect(url, max_size=None) for _ in range(5)]
    check(all(s.response_headers.get("Sec-WebSocket-Extensions") == NEGOTIATED for s in subs),
          "websockets (default client) negotiates: " + str(subs[0].response_headers.get(
              "Sec-WebSocket-Extensions")))
    check(all(len(s.extensions) == 1 for s in subs), "websockets uses the extension")
    plain = await websockets.connect(url, compression=None, max_size=None)
    check("Sec-WebSocket-Extensions" not in plain.response_headers,
          "a client that offers nothing gets no extension")
    for s in subs + [plain]:
        await subscribe(s, "share")
    before = stats(port).get("messages_compressed", 0)
    n = 20
    async with websockets.connect(url) as pub:
        await recv_type(pub, "connected")
        for i in range(n):
            await pub.send(publish_msg("share", big_data(i)))
            await recv_type(pub, "published")
    for s in subs + [plain]:
        got = [await recv_type(s, "update") for _ in range(n)]
        check([m["data"] for m in got] == [big_data(i) for i in range(n)],
              "a subscriber (%s) got the %d large updates intact"
              % ("plain" if s is plain else "deflate", n))
        await s.close()
    made = stats(port).get("messages_compressed", 0) - before
    check(made == n, "each broadcast compressed once for 5 deflate subscribers: %d "
                     "compressions for %d publications" % (made, n))


def frames_on_the_wire(port):
    raw = RawClient(port)
    check(raw.headers.get("sec-websocket-extensions") == NEGOTIATED,
          "raw client: extension answered")
    compressed, _ = raw.until("connected")
    check(not compressed, "`connected` (under the threshold) is not compressed")
    raw.send_json({"type": "subscribe", "channel": "kpi", "scope": {"org": "wire"}})
    raw.until("subscribed")
    plain = RawClient(port, offer=None)
    plain.until("connected")
    plain.send_json({"type": "subscribe", "channel": "kpi", "scope": {"org": "wire"}})
    plain.until("subscribed")

    pub = RawClient(port)
    pub.until("connected")
    pub.send_json(json.loads(publish_msg("wire", {"small": 1})))
    pub.send_json(json.loads(publish_msg("wire", big_data(1))))
    c1, m1 = raw.until("update")
    c2, m2 = raw.until("update")
    check(not c1 and m1["data"] == {"small": 1}, "a small update goes uncompressed (no RSV1)")
    check(c2 and m2["data"] == big_data(1), "a large update has RSV1 and inflates to the JSON")
    p1, _ = plain.until("update")
    p2, pm2 = plain.until("update")
    check(not p1 and not p2 and pm2["data"] == big_data(1),
          "the same update to a client without the extension is plain")

    # A compressed message from the client (RFC 7692 payload: raw deflate, tail removed).
    body = publish_msg("wire", big_data(2)).encode()
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = z.compress(body) + z.flush(zlib.Z_SYNC_FLUSH)
    assert payload.endswith(b"\x00\x00\xff\xff")
    pub.send(payload[:-4], rsv1=True)
    _, m3 = raw.until("update")
    check(m3["data"] == big_data(2), "a compressed client message is inflated and handled")

    # Corrupt compressed data: 1007.
    bad = RawClient(port)
    bad.until("connected")
    bad.send(b"\xff\xff\xff\xff", rsv1=True)
    code = None
    while code is None:
        compressed, text = bad.message()
        if compressed is None:
            code = text
    check(code == 1007, "corrupt compressed data: close 1007 (got %s)" % code)
    for c in (raw, plain, pub, bad):
        c.s.close()


async def bomb(port, pid):
    url = "ws://127.0.0.1:%d/ws" % port
    good = await websockets.connect(url, max_size=None)
    await subscribe(good, "bomb")
    rss0 = rss_kib(pid)
    codes = []
    for _ in range(3):
        attacker = await websockets.connect(url, max_size=None)
        await recv_type(attacker, "connected")
        # 50 MB of one character compresses to ~50 KB, under the 64 KiB message limit.
        await attacker.send(publish_msg("bomb", {"x": "a" * (50 << 20)}))
        try:
            while True:
                await asyncio.wait_for(attacker.recv(), 10)
        except websockets.ConnectionClosed:
            pass
        codes.append(attacker.close_code)
    rss1 = rss_kib(pid)
    check(codes == [1009] * 3, "compression bombs are closed with 1009: %s" % codes)
    check(rss1 - rss0 < 16 * 1024,
          "rtd's memory stayed flat through 3 bombs of 50 MB: %+d KiB" % (rss1 - rss0))
    async with websockets.connect(url) as pub:
        await recv_type(pub, "connected")
        await pub.send(publish_msg("bomb", {"after": True}))
        await recv_type(pub, "published")
    m = await recv_type(good, "update")
    check(m["data"] == {"after": True}, "a well-behaved client keeps receiving after the bombs")
    await good.close()


def node_ws(port):
    if not WS_DIR or not os.path.isdir(os.path.join(WS_DIR, "node_modules", "ws")):
        check(False, "Node ws is available (npm install in bench/)")
        return
    proc = subprocess.Popen(["node", os.path.join(HERE, "ws_deflate_client.mjs"),
                             os.path.join(WS_DIR, "node_modules"),
                             "ws://127.0.0.1:%d/ws" % port, "kpi", "node", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    async def publish():
        await asyncio.sleep(1.5)
        async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as pub:
            await recv_type(pub, "connected")
            for i in range(3):
                await pub.send(publish_msg("node", big_data(i)))
                await recv_type(pub, "published")

    asyncio.run(publish())
    out, err = proc.communicate(timeout=30)
    lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    ext = [l for l in lines if l["type"] == "extensions"]
    check(ext and "permessage-deflate" in ext[0]["value"],
          "Node ws (perMessageDeflate) negotiates: %s" % (ext[0]["value"] if ext else err))
    ups = [l["data"] for l in lines if l["type"] == "update"]
    check(ups == [big_data(i) for i in range(3)], "Node ws inflates the shared frames")
    check(proc.returncode == 0, "Node ws client exits cleanly")


async def off_by_default(port):
    async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as ws:
        check(not ws.extensions and
              "Sec-WebSocket-Extensions" not in ws.response_headers,
              "without --deflate the offer is declined")
        await recv_type(ws, "connected")


def main():
    if WS_DIR and not os.path.isdir(os.path.join(WS_DIR, "node_modules", "ws")):
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund"], cwd=WS_DIR,
                       timeout=240)
    proc, port = start_rtd(RTD, "--deflate", "--deflate-threshold", str(THRESHOLD),
                           "--allow-publish", "--threads", "1", "--max-message-size", "65536",
                           "--max-messages-per-second", "1000")
    try:
        asyncio.run(negotiation_and_sharing(port))
        frames_on_the_wire(port)
        asyncio.run(bomb(port, proc.pid))
        node_ws(port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    check(proc.returncode == 0, "rtd --deflate stops cleanly")
    proc, port = start_rtd(RTD)
    try:
        asyncio.run(off_by_default(port))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print("FAILED: %d" % len(failures) if failures else "all passed")
    sys.exit(1 if failures else 0)


main()
