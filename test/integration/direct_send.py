#!/usr/bin/python3
"""Replies that go straight to the socket (session::end_direct) arrive whole and in order.

A session that is idle hands the replies to one client message (or to its opening) to the
socket in one non-blocking send; what the socket does not take, the rest of a frame taken in
part first, goes through the queue. Each case below makes the socket take only part:

1. Six retained values of 900 KB each (six topics of one channel) to a raw client that
   subscribes to the channel and then reads nothing for a second: more than the socket's
   largest send buffer (4 MiB), so the send stops inside a frame. The client then gets
   `connected`, `subscribed` and the six `initial` values, whole.
2. A recovery replay of 120 updates of 20 KB: more frames than one send takes; the rest
   follows through the queue, seq 1..120 in order.
3. 40 pipelined `ping` requests in one write: 40 `pong` replies, in request order (more than
   one send's worth of buffers).
4. A request and a close frame in one write: the reply, then the close frame (1000), then
   the server closes the connection.
Usage: direct_send.py PATH_TO_RTD
"""
import asyncio
import base64
import json
import os
import socket
import struct
import sys
import time

import websockets

from rtdtest import FrameReader, check, failures, start_rtd

RTD = sys.argv[1]
UPDATES = 120
PAD = "x" * 20000
BIG_TOPICS = 6
BIG_PAD = "y" * 900000


def masked(opcode, payload):
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack("!Q", n)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def text(obj):
    return masked(0x1, json.dumps(obj).encode())


class raw_client(FrameReader):
    """A WebSocket client on a plain socket: exact control over what is written together and
    when the socket is read."""

    def __init__(self, port, rcvbuf=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect
        self.s.settimeout(20)
        self.s.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise RuntimeError("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        check(head.startswith(b"HTTP/1.1 101"), "raw client upgraded")

    def message(self):
        """The next text message, skipping pings and heartbeats."""
        while True:
            fin, _, op, payload = self.frame()
            if not fin:
                raise RuntimeError("fragmented server frame (not expected here)")
            if op == 0x9 or op == 0xA:
                continue
            if op != 0x1:
                return op, payload
            m = json.loads(payload)
            if m.get("type") == "heartbeat":
                continue
            return op, m


async def publish_history(url):
    """Publishes UPDATES large updates on `big` and returns the hub's epoch."""
    # max_queue=None: this client reads only acks, and its updates must not stall its reads
    # (websockets stops reading when its queue is full, and its close would then wait).
    async with websockets.connect(url, max_size=None, max_queue=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": "big", "id": "s"}))
        epoch = None
        while epoch is None:
            m = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if m.get("type") == "subscribed":
                epoch = m["epoch"]
        for i in range(1, UPDATES + 1):
            await ws.send(json.dumps({"type": "publish", "channel": "big", "id": i,
                                      "data": {"i": i, "pad": PAD}}))
        acked = 0
        deadline = time.monotonic() + 30
        while acked < UPDATES and time.monotonic() < deadline:
            m = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if m.get("type") == "published":
                acked += 1
        check(acked == UPDATES, f"{UPDATES} updates of {len(PAD) // 1000} KB published ({acked})")
        for t in range(BIG_TOPICS):
            await ws.send(json.dumps({"type": "publish", "channel": "huge", "id": f"h{t}",
                                      "scope": {"org": f"t{t}"}, "data": {"t": t, "pad": BIG_PAD}}))
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if m.get("type") == "published":
                    break
                if m.get("type") == "error":
                    check(False, f"publishing 900 KB: {m}")
                    break
        return epoch


def retained_through_a_closed_window(port):
    c = raw_client(port, rcvbuf=4096)
    c.s.sendall(text({"type": "subscribe", "channel": "huge", "id": "h"}))
    time.sleep(1.0)  # nothing read: the server's send meets a closed window
    op, m = c.message()
    check(op == 0x1 and m.get("type") == "connected", "first message: connected")
    op, m = c.message()
    check(m.get("type") == "subscribed", "then subscribed")
    seen = []
    for _ in range(BIG_TOPICS):
        op, m = c.message()
        if m.get("type") != "initial":
            check(False, f"unexpected message among the initial values: {str(m)[:200]}")
            break
        if m["data"].get("pad") == BIG_PAD:
            seen.append(m["data"]["t"])
    check(sorted(seen) == list(range(BIG_TOPICS)),
          f"{BIG_TOPICS} initial values of 900 KB, each whole ({sorted(seen)})")
    c.s.close()


def replay_through_a_closed_window(port, epoch):
    c = raw_client(port, rcvbuf=4096)
    c.s.sendall(text({"type": "subscribe", "channel": "big", "id": "r",
                      "recover": {"epoch": epoch, "offset": 0}}))
    time.sleep(1.0)  # nothing read: the server's send meets a closed window
    op, m = c.message()
    check(op == 0x1 and m.get("type") == "connected", "first message: connected")
    op, m = c.message()
    check(m.get("type") == "subscribed" and m.get("recovered") is True,
          "then subscribed, recovered: true")
    seqs, intact = [], 0
    while len(seqs) < UPDATES:
        op, m = c.message()
        if m.get("type") != "update":
            check(False, f"unexpected message during the replay: {str(m)[:200]}")
            break
        seqs.append(m["seq"])
        if m["data"] == {"i": m["seq"], "pad": PAD}:
            intact += 1
    check(seqs == list(range(1, UPDATES + 1)),
          f"replay: seq 1..{UPDATES} in order ({seqs[:3]}..{seqs[-3:]}, {len(seqs)})")
    check(intact == UPDATES, f"every replayed payload intact ({intact}/{UPDATES})")
    c.s.close()


def pipelined_pings(port):
    c = raw_client(port)
    op, m = c.message()
    check(m.get("type") == "connected", "pipelined client: connected")
    c.s.sendall(b"".join(text({"type": "ping", "id": i}) for i in range(40)))
    ids = []
    while len(ids) < 40:
        op, m = c.message()
        if m.get("type") != "pong":
            check(False, f"unexpected reply to a ping: {m}")
            break
        ids.append(m.get("id"))
    check(ids == list(range(40)), f"40 pipelined pings: 40 pongs in order ({ids[:5]}..)")
    c.s.close()


def request_then_close(port):
    c = raw_client(port)
    c.message()  # connected
    c.s.sendall(text({"type": "ping", "id": "last"}) +
                masked(0x8, struct.pack("!H", 1000) + b"bye"))
    op, m = c.message()
    check(op == 0x1 and m.get("type") == "pong" and m.get("id") == "last",
          "request then close: the reply comes first")
    op, payload = c.message()
    check(op == 0x8 and struct.unpack("!H", payload[:2])[0] == 1000,
          f"... then the close frame, code 1000 ({op}, {payload[:2]!r})")
    try:
        rest = c.s.recv(1)
    except OSError:
        rest = b""
    check(rest == b"", "... then the server closes the connection")
    c.s.close()


proc, port = start_rtd(RTD, "--threads", "1", "--allow-publish", "--max-messages-per-second", "0")
try:
    epoch = asyncio.run(asyncio.wait_for(publish_history(f"ws://127.0.0.1:{port}/ws"), 60))
    retained_through_a_closed_window(port)
    replay_through_a_closed_window(port, epoch)
    pipelined_pings(port)
    request_then_close(port)
finally:
    proc.terminate()
    proc.wait(10)
sys.exit(1 if failures else 0)
