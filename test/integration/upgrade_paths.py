#!/usr/bin/python3
"""The ways a plain connection's HTTP phase can go (server::await_request, handle_request_now,
handle_connection), seen from raw sockets.

1. Silent after connecting: closed once the handshake timeout (1 s here) has passed, not
   before, and not much later (the shard's 250 ms tick enforces it).
2. The upgrade request and a subscribe frame in one write (answered in one handler): 101,
   then `connected`, then `subscribed` (the frame behind the request is not lost).
3. The request split over two writes 300 ms apart (continues in the coroutine): 101, then
   `connected`.
3b. The whole request sent 300 ms after the connect (nothing to read at the accept: the
   connection waits in its shard's poller, server_impl::wait_for_request), on each of the
   two shards: 101, then `connected`.
4. A refused upgrade answered in one handler (an Origin not allowed): 403 with a JSON body,
   then the connection is closed.
5. A REST request on a fresh connection, then a second one on the same connection
   (keep-alive, in the coroutine): two 200 answers.
6. A keep-alive connection between requests waits in the shard's poller
   (server_impl::await_next_request): a REST request, a pause, another, a pause, then a
   WebSocket upgrade on the same connection (101, `connected`); a connection left idle after
   an answer is closed after the handshake timeout; a stop closes idle ones, and new ones
   still silent, at once.
rtd runs with two io threads: connections are dealt to both shards, the second's handed over
as a bare descriptor.
Usage: upgrade_paths.py PATH_TO_RTD
"""
import base64
import json
import os
import socket
import sys
import time

from rtdtest import check, failures, start_rtd

RTD = sys.argv[1]


def upgrade_request(port, extra=""):
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


def masked_text(obj):
    payload = json.dumps(obj).encode()
    assert len(payload) < 126
    key = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + key + bytes(
        b ^ key[i % 4] for i, b in enumerate(payload))


def read_all_until(s, pred, timeout=5):
    s.settimeout(timeout)
    data = b""
    while not pred(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def messages(data):
    """The text messages of unmasked server frames after the HTTP head."""
    head, _, rest = data.partition(b"\r\n\r\n")
    out = []
    while len(rest) >= 2:
        n = rest[1] & 0x7F
        off = 2
        if n == 126:
            n = int.from_bytes(rest[2:4], "big")
            off = 4
        if len(rest) < off + n:
            break
        if rest[0] & 0x0F == 0x1:
            out.append(json.loads(rest[off:off + n]))
        rest = rest[off + n:]
    return head, out


def wait_for_close(s, timeout):
    """(what the next read got, b"" when the server closed; seconds waited)."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    try:
        got = s.recv(100)
    except OSError:
        got = b""
    return got, time.monotonic() - t0


def silent_connection(port):
    s = socket.create_connection(("127.0.0.1", port))
    got, took = wait_for_close(s, 10)
    check(got == b"", "silent connection: closed by the server")
    check(0.9 <= took <= 2.5, f"... after the 1 s handshake timeout ({took:.2f} s)")
    s.close()


def upgrade_with_frame_behind(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(upgrade_request(port) + masked_text({"type": "subscribe", "channel": "kpi",
                                                   "id": "behind"}))
    data = read_all_until(s, lambda d: len(messages(d)[1]) >= 2)
    head, msgs = messages(data)
    check(head.startswith(b"HTTP/1.1 101"), "request + frame in one write: 101")
    types = [m.get("type") for m in msgs]
    check(types[:2] == ["connected", "subscribed"] and msgs[1].get("id") == "behind",
          f"... then connected, then subscribed to the frame sent behind it ({types})")
    s.close()


def split_request(port):
    s = socket.create_connection(("127.0.0.1", port))
    req = upgrade_request(port)
    s.sendall(req[:20])
    time.sleep(0.3)
    s.sendall(req[20:])
    data = read_all_until(s, lambda d: len(messages(d)[1]) >= 1)
    head, msgs = messages(data)
    check(head.startswith(b"HTTP/1.1 101"), "request split over two writes: 101")
    check(msgs[:1] and msgs[0].get("type") == "connected", "... then connected")
    s.close()


def delayed_request(port):
    # Nothing to read at the accept: the connection waits in its shard's poller, then its
    # whole request is read and answered as at once (one per shard with --threads 2).
    for i in range(2):
        s = socket.create_connection(("127.0.0.1", port))
        time.sleep(0.3)
        s.sendall(upgrade_request(port))
        data = read_all_until(s, lambda d: len(messages(d)[1]) >= 1)
        head, msgs = messages(data)
        check(head.startswith(b"HTTP/1.1 101") and msgs[:1] and msgs[0].get("type") == "connected",
              f"request sent 0.3 s after the connect (connection {i + 1}): 101, then connected")
        s.close()


def refused_upgrade(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(upgrade_request(port, "Origin: https://evil.example\r\n"))
    data = read_all_until(s, lambda d: False)  # until the server closes
    head, _, body = data.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 403"), f"foreign origin: 403 ({head[:40]!r})")
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    check(code == "ORIGIN_NOT_ALLOWED", f"... with a JSON body naming the error ({body[:80]!r})")
    s.close()


def health_requests(s, port, count, pause=0.0):
    """`count` GET /api/health on connection `s`, `pause` seconds after each answer; their
    statuses."""
    req = f"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    statuses = []
    for _ in range(count):
        s.sendall(req)
        data = read_all_until(s, lambda d: b"\r\n\r\n" in d and d.rstrip().endswith(b"}"))
        statuses.append(data.split(b" ")[1] if data else b"")
        time.sleep(pause)
    return statuses


def rest_keep_alive(port):
    s = socket.create_connection(("127.0.0.1", port))
    statuses = health_requests(s, port, 2)
    check(statuses == [b"200", b"200"], f"two REST requests on one connection: {statuses}")
    s.close()


def idle_between_requests(port):
    s = socket.create_connection(("127.0.0.1", port))
    # idle between requests: the connection waits in the poller
    statuses = health_requests(s, port, 2, pause=0.4)
    s.sendall(upgrade_request(port))
    data = read_all_until(s, lambda d: len(messages(d)[1]) >= 1)
    head, msgs = messages(data)
    check(statuses == [b"200", b"200"] and head.startswith(b"HTTP/1.1 101") and
          [m.get("type") for m in msgs][:1] == ["connected"],
          f"REST, pause, REST, pause, then an upgrade on one connection: {statuses}, "
          f"{head[:12]!r}, connected")
    s.close()
    # Idle after an answer: closed once the handshake timeout (1 s) has passed.
    s = socket.create_connection(("127.0.0.1", port))
    health_requests(s, port, 1)
    got, took = wait_for_close(s, 5)
    check(got == b"" and 0.9 <= took <= 2.5,
          f"idle after an answer: closed after the handshake timeout ({took:.2f} s)")
    s.close()


def stop_with_idle(port, proc):
    conns = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", port))
        health_requests(s, port, 1)
        conns.append(s)
    for _ in range(3):  # and new connections still waiting for their request
        conns.append(socket.create_connection(("127.0.0.1", port)))
    time.sleep(0.2)
    t0 = time.time()
    proc.terminate()
    proc.wait(10)
    closed = 0
    for s in conns:
        s.settimeout(2)
        try:
            closed += s.recv(100) == b""
        except OSError:
            closed += 1
    check(time.time() - t0 < 3 and closed == 8,
          f"a stop with 5 idle keep-alive connections and 3 silent new ones: exits at once, "
          f"{closed} of 8 closed")


proc, port = start_rtd(RTD, "--threads", "2", "--handshake-timeout", "1",
                       "--allowed-origin", "https://dash.example")
try:
    silent_connection(port)
    upgrade_with_frame_behind(port)
    split_request(port)
    delayed_request(port)
    refused_upgrade(port)
    rest_keep_alive(port)
    idle_between_requests(port)
    stop_with_idle(port, proc)
finally:
    proc.terminate()
    proc.wait(10)
sys.exit(1 if failures else 0)
