#!/usr/bin/python3
"""Socket.IO's long-polling transport by hand (raw HTTP/1.1 keep-alive connections): a GET
with nothing to take parks its connection (docs/architecture.md, "Memory per connection"),
and is answered when something comes: an update, a ping, the end. Checks: the parked GET's
answer (body, CORS, keep-alive: the same connection polls again), a broadcast reaching 40
parked GETs spread over two io threads, an overlapping GET, an upgrade while parked, and a
stop with parked GETs (rtd exits at once, their connections close)."""
import asyncio
import json
import socket
import sys
import threading
import time

import websockets

from rtdtest import check, failures, start_rtd

RTD = sys.argv[1]
ORIGIN = "http://dash.example"


class Conn:
    """One keep-alive HTTP/1.1 connection, requests written and answers read by hand."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, method, target, body=b"", origin=None):
        head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if origin:
            head += f"Origin: {origin}\r\n"
        if method == "POST":
            head += f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n"
        self.s.sendall((head + "\r\n").encode() + body)

    def answer(self, timeout=10):
        """(status, headers, body); None when the server closed the connection."""
        self.s.settimeout(timeout)
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        n = int(headers.get("content-length", 0))
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        body, self.buf = self.buf[:n], self.buf[n:]
        return int(lines[0].split()[1]), headers, body.decode()

    def request(self, method, target, body=b"", origin=None, timeout=10):
        self.send(method, target, body, origin)
        return self.answer(timeout)

    def closed_within(self, seconds):
        """True when the server closes the connection (after a last answer, if any) within
        `seconds`."""
        deadline = time.time() + seconds
        try:
            while time.time() < deadline:
                self.s.settimeout(max(0.01, deadline - time.time()))
                if self.s.recv(65536) == b"":
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True
        return False


def rest(port, method, path, payload=None):
    c = Conn(port)
    body = json.dumps(payload).encode() if payload is not None else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    c.s.sendall(head.encode() + body)
    st, _, b = c.answer()
    c.s.close()
    return st, json.loads(b) if b else {}


class Polling:
    """A Socket.IO client on polling: one connection for its GETs, one for its POSTs."""

    def __init__(self, port, channel="board"):
        self.port = port
        self.get_conn = Conn(port)
        self.post_conn = Conn(port)
        st, _, body = self.get_conn.request("GET", "/socket.io/?EIO=4&transport=polling")
        self.sid = json.loads(body[1:])["sid"]
        self.q = f"/socket.io/?EIO=4&transport=polling&sid={self.sid}"
        self.post("40")
        st, _, body = self.get_conn.request("GET", self.q)
        assert body.startswith("40{"), body
        self.post(f'42["subscribe","{channel}"]')
        body = self.get_conn.request("GET", self.q)[2]
        assert '"subscribed"' in body, body

    def post(self, payload):
        st, _, body = self.post_conn.request("POST", self.q, payload.encode())
        assert st == 200 and body == "ok", (st, body)


async def upgrade_while_parked(port, u):
    async with websockets.connect(
            f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket&sid={u.sid}") as ws:
        await ws.send("2probe")
        check(await asyncio.wait_for(ws.recv(), 5) == "3probe", "upgrade: the probe answered")
        a = await asyncio.to_thread(u.get_conn.answer)
        check(a is not None and a[2] == "6", f"... the parked GET gets a noop ({a and a[2]!r})")
        await ws.send("5")
        await asyncio.to_thread(rest, port, "POST", "/api/broadcast",
                                {"channel": "board", "event": "board:update", "data": {"v": 3}})
        m = await asyncio.wait_for(ws.recv(), 5)
        while m == "2":
            await ws.send("3")
            m = await asyncio.wait_for(ws.recv(), 5)
        check('{"v":3}' in m, f"... and updates come on the WebSocket ({m!r})")


def main():
    proc, port = start_rtd(RTD, "--threads", "2", "--allowed-origin", ORIGIN,
                           "--heartbeat-interval", "2", "--allow-publish")
    try:
        # A parked GET answered by a broadcast: body, CORS, and the same connection again.
        p = Polling(port)
        p.get_conn.send("GET", p.q, origin=ORIGIN)
        time.sleep(0.3)  # parked by now: nothing was queued
        st, _ = rest(port, "POST", "/api/broadcast",
                     {"channel": "board", "event": "board:update", "data": {"v": 1}})
        check(st == 200, f"broadcast accepted ({st})")
        a = p.get_conn.answer()
        check(a is not None and a[0] == 200 and '42["board:update",{"v":1}' in a[2],
              f"a parked GET is answered with the update ({a})")
        check(a is not None and a[1].get("access-control-allow-origin") == ORIGIN and
              a[1].get("content-type", "").startswith("text/plain") and
              a[1].get("cache-control") == "no-store",
              f"... with CORS, its content type and no-store ({a and a[1]})")
        # The same connection polls again: it parks again and gets the heartbeat's ping.
        t0 = time.time()
        a = p.get_conn.request("GET", p.q, timeout=6)
        check(a is not None and a[2] == "2" and time.time() - t0 > 0.2,
              f"the connection, answered, polls again: the next GET parks, then gets the "
              f"ping ({a and a[2]!r} after {time.time() - t0:.1f} s)")
        p.post("3")

        # 40 clients, their GETs parked over both io threads, one broadcast: each gets it.
        clients = [Polling(port) for _ in range(40)]
        for c in clients:
            c.get_conn.send("GET", c.q)
        time.sleep(0.3)
        st, _ = rest(port, "POST", "/api/broadcast",
                     {"channel": "board", "event": "board:update", "data": {"v": 2}})
        got = 0
        for c in clients:
            a = c.get_conn.answer()
            while a and a[2] == "2":  # a ping came first: poll again
                c.post("3")
                a = c.get_conn.request("GET", c.q)
            got += 1 if a and '{"v":2}' in a[2] else 0
        check(got == 40, f"one broadcast, 40 parked GETs on two io threads: {got} answered with it")

        # An overlapping GET: Engine.IO ends the session; the parked GET gets the close packet.
        o = clients[0]
        o.get_conn.send("GET", o.q)
        time.sleep(0.2)
        second = Conn(port).request("GET", o.q)
        first = o.get_conn.answer()
        check(second is not None and second[0] == 400,
              f"a second GET while one is parked: 400 ({second and second[:1]})")
        check(first is not None and first[2].endswith("1"),
              f"... and the parked one gets the close packet ({first and first[2]!r})")

        # An upgrade while a GET is parked: the GET gets a noop, the WebSocket carries on.
        u = clients[1]
        u.get_conn.send("GET", u.q)
        time.sleep(0.2)
        asyncio.run(upgrade_while_parked(port, u))

        # A stop with parked GETs: rtd exits at once and their connections close.
        for c in clients[2:12]:
            c.get_conn.send("GET", c.q)
        time.sleep(0.3)
        t0 = time.time()
        proc.terminate()
        proc.wait(10)
        took = time.time() - t0
        closed = sum(1 for c in clients[2:12] if c.get_conn.closed_within(3))
        check(took < 3 and closed == 10,
              f"stopped with 10 parked GETs: exits in {took:.2f} s, {closed} of 10 closed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    print("FAILED: " + ", ".join(failures) if failures else "all ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
