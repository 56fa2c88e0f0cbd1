#!/usr/bin/python3
"""The Server-Sent Events transport (GET /sse) of rtd, end to end over plain sockets.

Checks: the stream's head and first messages, initial then updates in seq order with ids,
heartbeat comments, resumption with Last-Event-ID (header) and ?lastEventId= with nothing lost
and nothing repeated (also while a publisher runs flat out during reconnections), an org
stream covering narrower topics, epoch mismatch, bad requests, authentication (token in the
query or the Authorization header, organization and channel checks), the slow-reader bound,
/api/connections and the metrics of SSE streams.
Usage: sse.py PATH_TO_RTD
"""
import base64
import hashlib
import hmac
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from rtdtest import check, failures, start_rtd

RTD = sys.argv[1]


def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/broadcast", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def publish(port, n, org="acme", dept=None, channel="kpi", size=0):
    target = {"organization_id": org}
    if dept:
        target["department_id"] = dept
    data = {"n": n}
    if size:
        data["pad"] = "x" * size
    return post(port, {"channel": channel, "target": target, "data": data})["seq"]


def get(port, path, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Stream:
    """An SSE client on a raw socket: parses events (id, data) and comments as they come."""

    def __init__(self, port, query, headers=None, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        lines = [f"GET /sse?{query} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        status_line, *fields = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (f.split(":", 1) for f in fields if ":" in f)}
        self.last_id = None
        self.comments = []

    def _until(self, sep):
        while sep not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("stream closed")
            self.buf += chunk
        out, self.buf = self.buf.split(sep, 1)
        return out

    def body(self):
        """The rest of a refusal's body (the server closes after it)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
        except OSError:
            pass
        return self.buf.decode()

    def event(self, timeout=5):
        """The next event as (id or None, parsed data); comments are collected on the way."""
        self.sock.settimeout(timeout)
        while True:
            block = self._until(b"\n\n").decode()
            ev_id, data = None, []
            for line in block.split("\n"):
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                elif line.startswith("id: "):
                    ev_id = line[4:]
                elif line.startswith("data: "):
                    data.append(line[6:])
            if ev_id is not None:
                self.last_id = ev_id
            if data:
                return ev_id, json.loads("\n".join(data))

    def until_type(self, t, timeout=5):
        while True:
            ev_id, m = self.event(timeout)
            if m["type"] == t:
                return ev_id, m

    def close(self):
        self.sock.close()


def jwt(secret, claims):
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def metric(port, name, labels=""):
    _, text = get(port, "/metrics")
    for line in text.splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + " ")):
            return float(line.split()[-1])
    return None


def basics(port):
    for n in range(1, 4):
        publish(port, n)
    s = Stream(port, "channel=kpi&org=acme")
    check(s.status == 200 and s.headers.get("content-type", "").startswith("text/event-stream"),
          "GET /sse answers 200 text/event-stream")
    check(s.headers.get("cache-control") == "no-store", "the stream is not cached")
    _, m = s.event()
    check(m["type"] == "connected" and m["heartbeatInterval"] == 1000, "first message: connected")
    _, m = s.event()
    epoch = m.get("epoch")
    check(m["type"] == "subscribed" and m["topic"] == "kpi:org:acme" and epoch, "then subscribed with the epoch")
    ev_id, m = s.event()
    check(m["type"] == "initial" and m["seq"] == 3 and m["data"]["n"] == 3, "then the initial value (seq 3)")
    check(ev_id == f"{epoch},kpi=3", f"the initial's id is the position: {ev_id}")
    seqs = []
    for n in range(4, 11):
        publish(port, n)
    while len(seqs) < 7:
        ev_id, m = s.event()
        check(m["type"] == "update" and ev_id == f"{epoch},kpi={m['seq']}", f"update seq {m['seq']} has id {ev_id}")
        seqs.append(m["seq"])
    check(seqs == list(range(4, 11)), f"updates 4..10 in order: {seqs}")
    # heartbeats are comments (EventSource ignores them), every heartbeat interval
    end = time.time() + 3
    while not s.comments and time.time() < end:
        try:
            s.event(timeout=0.3)
        except socket.timeout:
            pass
    check(s.comments and json.loads(s.comments[0])["type"] == "heartbeat", "heartbeat arrives as a comment line")
    status, body = get(port, "/api/connections")
    conns = json.loads(body)["connections"]
    check(any(c.get("transport") == "sse" and c["subscriptions"] == ["kpi:org:acme"] for c in conns),
          "/api/connections lists the stream (transport sse)")
    check(metric(port, "rtpush_sse_connections") == 1, "rtpush_sse_connections is 1")
    last = s.last_id
    s.close()

    # Resume with the Last-Event-ID header: exactly what was missed, then live.
    for n in range(11, 16):
        publish(port, n)
    s = Stream(port, "channel=kpi&org=acme", {"Last-Event-ID": last})
    s.until_type("connected")
    _, m = s.event()
    check(m["type"] == "subscribed" and m.get("recovered") is True, "Last-Event-ID: subscribed recovered:true")
    got = []
    while len(got) < 5:
        ev_id, m = s.event()
        check(m["type"] == "update", f"replayed {m['type']} seq {m['seq']}")
        got.append(m["seq"])
    publish(port, 16)
    _, m = s.event()
    got.append(m["seq"])
    check(got == list(range(11, 17)), f"replay 11..15 then live 16, nothing lost or repeated: {got}")
    last = s.last_id
    s.close()

    # The same with ?lastEventId= (a page reconnecting on its own), and a bare offset.
    publish(port, 17)
    s = Stream(port, "channel=kpi&org=acme&lastEventId=" + urllib.parse.quote(last))
    s.until_type("subscribed")
    _, m = s.event()
    check(m["type"] == "update" and m["seq"] == 17, "?lastEventId= resumes at seq 17")
    s.close()
    s = Stream(port, "channel=kpi&org=acme", {"Last-Event-ID": "15"})
    _, sub = s.until_type("subscribed")
    _, a = s.event()
    _, b = s.event()
    check(sub.get("recovered") is True and [a["seq"], b["seq"]] == [16, 17], "a bare offset (15) resumes at 16")
    s.close()

    # Another epoch (a restarted server): recovered false and the current state.
    s = Stream(port, "channel=kpi&org=acme", {"Last-Event-ID": "0123456789abcdef,kpi=3"})
    _, sub = s.until_type("subscribed")
    ev_id, m = s.event()
    check(sub.get("recovered") is False and sub.get("reason") == "epoch_mismatch" and m["type"] == "initial"
          and m["seq"] == 17, "another epoch: recovered false (epoch_mismatch), then the initial value")
    s.close()
    return epoch


def org_stream(port, epoch):
    # An org stream covers its departments: each topic has its own position in the id.
    publish(port, 1, dept="support", channel="backlog")
    publish(port, 1, dept="sales", channel="backlog")
    s = Stream(port, "channel=backlog,alerts&org=acme")
    subs = [s.until_type("subscribed")[1]["channel"], s.until_type("subscribed")[1]["channel"]]
    check(subs == ["backlog", "alerts"], "two channels in one stream: subscribed to each")
    publish(port, 2, dept="support", channel="backlog")
    ev_id, m = s.until_type("update")
    check(ev_id == f"{epoch},backlog/sales=1,backlog/support=2", f"an org stream's id names each topic: {ev_id}")
    s.close()
    publish(port, 2, dept="sales", channel="backlog")
    publish(port, 3, dept="support", channel="backlog")
    publish(port, 1, channel="alerts")
    s = Stream(port, "channel=backlog,alerts&org=acme", {"Last-Event-ID": ev_id})
    got = []
    subs = 0
    while len(got) < 3:
        _, m = s.event()
        if m["type"] == "subscribed":
            subs += 1
            check(m.get("recovered") is True, f"{m['channel']}: recovered")
        elif m["type"] in ("update", "initial"):
            got.append((m["type"], m["topic"], m["seq"]))
    check(sorted(got) == [("update", "alerts:org:acme", 1), ("update", "backlog:org:acme:dept:sales", 2),
                          ("update", "backlog:org:acme:dept:support", 3)],
          f"resumed org stream replays each topic's missed publications: {got}")
    s.close()


def seam(port):
    # A publisher runs flat out while a reader disconnects and resumes again and again: every
    # seq arrives exactly once, in order.
    stop = threading.Event()
    published = []

    def pub():
        n = 0
        while not stop.is_set():
            n += 1
            published.append(publish(port, n, org="seam"))

    t = threading.Thread(target=pub)
    t.start()
    seen = []
    last = None
    try:
        for rnd in range(8):
            s = Stream(port, "channel=kpi&org=seam", {"Last-Event-ID": last} if last else None)
            reads = 0
            while reads < 15:
                ev_id, m = s.event()
                if m["type"] == "subscribed" and rnd > 0 and m.get("recovered") is not True:
                    check(False, f"round {rnd}: resumption not recovered: {m}")
                if m["type"] in ("initial", "update"):
                    if m["type"] == "initial" and rnd == 0:
                        seen.clear()  # the first connection's starting point
                    seen.append(m["seq"])
                    reads += 1
            last = s.last_id
            s.close()
    finally:
        stop.set()
        t.join()
    first = seen[0]
    check(seen == list(range(first, first + len(seen))),
          f"8 resumptions under a running publisher: {len(seen)} seqs, none lost, none repeated" + ("" if seen == list(range(first, first + len(seen))) else f": {seen}"))


def bad_requests(port):
    status, body = get(port, "/sse?org=acme")
    check(status == 400 and "channel is required" in body, "no channel: 400")
    status, body = get(port, "/sse?channel=kpi&dept=support")
    check(status == 400 and "INVALID_MESSAGE" in body, "a dept without an org: 400")
    status, body = get(port, "/sse?channel=kpi&org=acme", {"Last-Event-ID": "abc,kpi=x"})
    check(status == 400 and "Last-Event-ID" in body, "malformed Last-Event-ID: 400")
    req = urllib.request.Request(f"http://127.0.0.1:{port}/sse?channel=kpi", data=b"x", method="POST")
    try:
        urllib.request.urlopen(req, timeout=5)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    check(status == 405, "POST /sse: 405")


def slow_reader(port):
    before = metric(port, "rtpush_messages_dropped_total", '{reason="slow_consumer"}') or 0
    s = Stream(port, "channel=kpi&org=slow", rcvbuf=4096)
    s.until_type("subscribed")
    # Never read again: 64 KiB publications fill the socket buffers, then the 16-frame queue.
    for n in range(60):
        publish(port, n, org="slow", size=64 * 1024)
    ok = False
    end = time.time() + 10
    while time.time() < end:
        if metric(port, "rtpush_sse_connections") == 0:
            ok = True
            break
        time.sleep(0.1)
    after = metric(port, "rtpush_messages_dropped_total", '{reason="slow_consumer"}') or 0
    check(ok and after == before + 1, f"a reader that stops reading is dropped (slow_consumer {before} -> {after})")
    s.close()


def auth():
    secret = "sse-test-secret"
    proc, port = start_rtd(RTD, "--jwt-secret", secret, "--auth-required", "--heartbeat-interval", "1",
                           "--jwt-leeway", "0", "--token-expiry-warning", "2", "--max-connections-per-user", "2")
    try:
        publish(port, 1)
        status, body = get(port, "/sse?channel=kpi&org=acme")
        check(status == 401 and "AUTH_FAILED" in body, "auth required, no token: 401")
        status, _ = get(port, "/sse?channel=kpi&org=acme&token=not.a.token")
        check(status == 401, "a token that does not verify: 401")
        other = jwt(secret, {"sub": "u2", "org": "globex", "exp": int(time.time()) + 600})
        status, body = get(port, "/sse?channel=kpi&org=acme&token=" + other)
        check(status == 403 and "UNAUTHORIZED" in body, "a token of another organization: 403")
        narrow = jwt(secret, {"sub": "u3", "org": "acme", "channels": ["alerts"], "exp": int(time.time()) + 600})
        status, body = get(port, "/sse?channel=kpi&org=acme", {"Authorization": "Bearer " + narrow})
        check(status == 403 and "channel kpi" in body, "a token without the channel: 403")
        good = jwt(secret, {"sub": "u1", "org": "acme", "exp": int(time.time()) + 600})
        s = Stream(port, "channel=kpi&org=acme&token=" + good)
        _, m = s.until_type("initial")
        check(s.status == 200 and m["data"]["n"] == 1, "?token= of the organization: the stream starts")
        s.close()
        s = Stream(port, "channel=kpi&org=acme", {"Authorization": "Bearer " + good})
        _, m = s.until_type("initial")
        check(s.status == 200, "Authorization: Bearer: the stream starts")
        s.close()
        check(metric(port, "rtpush_connections_rejected_total", '{reason="auth_failed"}') == 2,
              "rejected{reason=auth_failed} counts the 2 refusals")
        check(metric(port, "rtpush_connections_rejected_total", '{reason="unauthorized"}') == 2,
              "rejected{reason=unauthorized} counts the 2 refusals")

        # Per user (the token's sub): a third stream of the same user is refused, another
        # user's is not, and a closed stream frees its place.
        capped = jwt(secret, {"sub": "u9", "org": "acme", "exp": int(time.time()) + 600})
        two = [Stream(port, "channel=kpi&org=acme&token=" + capped) for _ in range(2)]
        for t in two:
            t.until_type("initial")
        status, body = get(port, "/sse?channel=kpi&org=acme&token=" + capped)
        check(status == 503 and "CONNECTION_LIMIT" in body and "user u9" in body,
              f"a third stream of one user: 503 CONNECTION_LIMIT ({status} {body})")
        s = Stream(port, "channel=kpi&org=acme&token=" + jwt(secret, {"sub": "u10", "org": "acme", "exp": int(time.time()) + 600}))
        check(s.status == 200, "... another user's stream starts")
        s.close()
        two[0].close()
        deadline = time.time() + 5
        while time.time() < deadline:
            probe = Stream(port, "channel=kpi&org=acme&token=" + capped)
            status = probe.status
            probe.close()
            if status != 503:
                break
            time.sleep(0.1)
        check(status == 200, f"... and a closed stream frees its place ({status})")
        two[1].close()
        check(metric(port, "rtpush_connections_rejected_total", '{reason="user_connection_limit"}') >= 1,
              "rejected{reason=user_connection_limit} counts it")

        # Token lifetime: token_expiring, then AUTH_FAILED and the end of the stream at exp; the
        # client reconnects with a fresh token and its Last-Event-ID and misses nothing.
        short = jwt(secret, {"sub": "u8", "org": "acme", "exp": int(time.time()) + 3})
        s = Stream(port, "channel=kpi&org=acme&token=" + short)
        s.until_type("initial")
        _, w = s.until_type("token_expiring", timeout=5)
        check(w["expiresIn"] <= 2 and isinstance(w["expiresAt"], int), f"token_expiring on a stream: {w}")
        _, e = s.until_type("error", timeout=5)
        check(e["code"] == "AUTH_FAILED" and "expired" in e["message"], f"at exp: an error ({e})")
        try:
            s.event(timeout=3)
            ended = False
        except (EOFError, OSError):
            ended = True
        check(ended, "... and the stream ends")
        last = s.last_id
        s.close()
        publish(port, 77)
        fresh = jwt(secret, {"sub": "u8", "org": "acme", "exp": int(time.time()) + 600})
        s = Stream(port, "channel=kpi&org=acme&token=" + fresh, {"Last-Event-ID": last})
        _, m = s.until_type("update")
        check(m["data"]["n"] == 77, f"resumed with a fresh token: the publication made meanwhile ({m['data']})")
        s.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


proc, port = start_rtd(RTD, "--heartbeat-interval", "1", "--queue-limit", "16")
try:
    epoch = basics(port)
    org_stream(port, epoch)
    seam(port)
    bad_requests(port)
    slow_reader(port)
finally:
    proc.terminate()
    proc.wait(timeout=15)
auth()
print(f"{len(failures)} failure(s)" if failures else "all passed")
sys.exit(1 if failures else 0)
