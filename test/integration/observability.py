#!/usr/bin/python3
"""What rtd tells operators, checked after the actions that cause it.

/metrics: connections rejected by reason (origin, auth, org limit, connection limit,
unauthorized SSE, handshake rate), the fan-out duration histogram, per-source refresh
successes/failures and durations; the logs: the access log of REST calls and connection
open/close lines with reason and duration. promtool checks the text when it is installed.
Usage: observability.py PATH_TO_RTD
"""
import asyncio
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import websockets  # noqa: E402  (Debian python3-websockets, /usr/bin/python3)

from rtdtest import check, failures, hs256_token  # noqa: E402

RTD = sys.argv[1]
SECRET = "observability-secret"


class Rtd:
    """rtd on a free port, every log line kept (parsed)."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([RTD, "--host", "127.0.0.1", "--port", "0", *args],
                                     stdout=subprocess.PIPE, text=True)
        self.lines = []
        self.port = None
        for line in self.proc.stdout:
            ev = json.loads(line)
            self.lines.append(ev)
            if ev.get("event") == "listening":
                self.port = ev["port"]
                break
        if self.port is None:
            raise RuntimeError("rtd did not start")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    def logs(self, event):
        return [ev for ev in list(self.lines) if ev.get("event") == event]

    def wait_log(self, pred, limit=5):
        end = time.time() + limit
        while time.time() < end:
            for ev in list(self.lines):
                if pred(ev):
                    return ev
            time.sleep(0.05)
        return None

    def get(self, path, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def post(self, path, body):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())

    def metrics(self):
        _, text = self.get("/metrics")
        return text

    def metric(self, series):
        for line in self.metrics().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=15)


def handshake(port, path="/ws", headers=None):
    """A raw WebSocket handshake: the HTTP status (101 or the refusal's)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    status = int(s.recv(4096).split(b" ")[1])  # the head may come with the first frame
    s.close()
    return status


def jwt(claims):
    return hs256_token(SECRET, claims)


def rejected(rtd, reason):
    return rtd.metric(f'rtpush_connections_rejected_total{{reason="{reason}"}}')


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def org_url(port, org):
    """rtd has a secret, so tokens are required (docs/security.md): the organization of a
    connection comes from its token."""
    token = jwt({"sub": "u-" + org, "org": org, "exp": int(time.time()) + 600})
    return f"ws://127.0.0.1:{port}/ws?token={token}"


async def connections(rtd):
    port = rtd.port
    # origin outside the allow-list
    check(handshake(port, headers={"Origin": "http://evil.example"}) == 403, "foreign Origin: 403")
    check(rejected(rtd, "origin_not_allowed") == 1, "rejected{origin_not_allowed} = 1")
    # a token that does not verify
    check(handshake(port, "/ws?token=not.a.token") == 401, "bad token: 401")
    check(rejected(rtd, "auth_failed") == 1, "rejected{auth_failed} = 1")
    # the organization's limit (1): the second acme connection is closed 1008
    ws1 = await websockets.connect(org_url(port, "acme"))
    await ws1.recv()
    ws2 = await websockets.connect(org_url(port, "acme"))
    try:
        while True:
            await asyncio.wait_for(ws2.recv(), 5)
    except websockets.ConnectionClosed as e:
        code = e.rcvd.code if e.rcvd else None
    check(code == 1008, f"second acme connection closed 1008 ({code})")
    check(rejected(rtd, "org_connection_limit") == 1, "rejected{org_connection_limit} = 1")
    close_line = rtd.wait_log(lambda ev: ev.get("event") == "connection_close" and "organization" in ev.get("reason", ""))
    check(close_line is not None and isinstance(close_line.get("duration_ms"), int) and "1008" in close_line["reason"],
          f"connection_close names the reason and duration: {close_line}")
    # the server's limit (3 connections)
    ws3 = await websockets.connect(org_url(port, "o3"))
    ws4 = await websockets.connect(org_url(port, "o4"))
    await ws3.recv()
    await ws4.recv()
    check(handshake(port) == 503, "fourth connection: 503")
    check(rejected(rtd, "connection_limit") == 1, "rejected{connection_limit} = 1")
    # an SSE stream whose token may not read the organization asked for
    other = jwt({"sub": "u", "org": "globex", "exp": int(time.time()) + 600})
    await ws4.close()
    await asyncio.sleep(0.2)
    status, _ = rtd.get("/sse?channel=kpi&org=acme&token=" + other)
    check(status == 403, "SSE with another organization's token: 403")
    check(rejected(rtd, "unauthorized") == 1, "rejected{unauthorized} = 1")
    check(rejected(rtd, "shutting_down") == 0 and rejected(rtd, "handshake_rate_limit") == 0,
          "the reasons not provoked stay 0")
    # open and close lines of a connection the client closes
    opened = rtd.wait_log(lambda ev: ev.get("event") == "connection_open" and "o3" == ev.get("org"))
    check(opened is not None and opened.get("transport") == "websocket" and opened.get("remote", "").startswith("127.0.0.1:"),
          f"connection_open: client, transport, remote, org: {opened}")
    await ws3.close()
    closed = rtd.wait_log(lambda ev: ev.get("event") == "connection_close" and ev.get("client") == opened.get("client"))
    check(closed is not None and closed.get("reason") == "closed by client (1000)" and closed.get("duration_ms", -1) >= 0,
          f"connection_close of a client close: {closed}")
    await ws1.close()


def fanout(rtd, threads):
    before = rtd.metric("rtpush_fanout_duration_seconds_count") or 0
    for n in range(5):
        rtd.post("/api/broadcast", {"channel": "fan", "data": {"n": n}})
    time.sleep(0.3)
    after = rtd.metric("rtpush_fanout_duration_seconds_count")
    check(after - before == 5 * threads, f"fan-out histogram: one observation per publication per io thread ({before} -> {after})")
    inf = rtd.metric('rtpush_fanout_duration_seconds_bucket{le="+Inf"}')
    check(inf == after and rtd.metric("rtpush_fanout_duration_seconds_sum") > 0, "its +Inf bucket equals the count, the sum is positive")


def sources(rtd):
    end = time.time() + 10
    while time.time() < end:
        good = rtd.metric('rtpush_source_refreshes_total{source="good",result="success"}')
        bad = rtd.metric('rtpush_source_refreshes_total{source="bad",result="failure"}')
        if good and bad:
            break
        time.sleep(0.1)
    check(good == 1 and rtd.metric('rtpush_source_refreshes_total{source="good",result="failure"}') == 0,
          f"source good: 1 success, 0 failures ({good})")
    check(bad == 1 and rtd.metric('rtpush_source_refreshes_total{source="bad",result="success"}') == 0,
          f"source bad: 1 failure, 0 successes ({bad})")
    check(rtd.metric('rtpush_source_refresh_duration_seconds_count{source="good"}') == 1
          and rtd.metric('rtpush_source_refresh_duration_seconds_bucket{source="bad",le="+Inf"}') == 1,
          "refresh duration histogram per source: one observation each")
    check(rtd.metric('rtpush_source_refresh_duration_seconds_sum{source="good"}') > 0, "its sum is positive")
    _, stats = rtd.get("/api/stats")
    by_name = {s["name"]: s for s in json.loads(stats)["stats"]["sources"]}
    check(by_name["good"]["fetches"] == 1 and by_name["bad"]["errors"] == 1, "the same counts as /api/stats sources")


def access_log(rtd):
    rtd.get("/api/health?probe=1")
    line = rtd.wait_log(lambda ev: ev.get("event") == "http_access" and ev.get("path") == "/api/health")
    check(line is not None and line.get("method") == "GET" and line.get("status") == 200
          and isinstance(line.get("duration_ms"), (int, float)) and line.get("remote", "").startswith("127.0.0.1:"),
          f"access log of GET /api/health: {line}")
    check(line is not None and "probe" not in json.dumps(line), "the access log has the path, not the query (tokens)")
    rtd.get("/api/nothing")
    line = rtd.wait_log(lambda ev: ev.get("event") == "http_access" and ev.get("path") == "/api/nothing")
    check(line is not None and line.get("status") == 404, "access log of a 404")
    rtd.post("/api/broadcast", {"channel": "x", "data": {}})
    line = rtd.wait_log(lambda ev: ev.get("event") == "http_access" and ev.get("method") == "POST")
    check(line is not None and line.get("path") == "/api/broadcast" and line.get("status") == 200,
          "access log of POST /api/broadcast")


def log_writes(config):
    """Log lines are written the way frames are corked (docs/operations.md, "Logs"): a line
    after a quiet interval goes out at once, a burst's lines together at the interval's end,
    a warning at once after what waits before it, and a stop writes whatever is left."""
    rtd = Rtd("--log-flush-interval", "2", "--config", config)
    try:
        time.sleep(2.5)  # quiet for longer than the interval
        rtd.get("/api/health?first=1")
        line = rtd.wait_log(lambda ev: ev.get("event") == "http_access" and ev.get("path") == "/api/health",
                            limit=1.5)
        check(line is not None, "a log line after a quiet interval is written at once (not after 2 s)")
        for i in range(20):
            rtd.get(f"/api/nothing-{i}")
        failed_before = len(rtd.logs("source_failed"))
        rtd.post("/api/refresh/bad", {})
        warning = rtd.wait_log(lambda ev: ev.get("event") == "source_failed" and
                               len(rtd.logs("source_failed")) > failed_before, limit=1.5)
        check(warning is not None, "a warning (source_failed) is written at once")
        lines = list(rtd.lines)
        burst = [i for i, ev in enumerate(lines) if str(ev.get("path", "")).startswith("/api/nothing-")]
        last_warning = max((i for i, ev in enumerate(lines) if ev.get("event") == "source_failed"), default=-1)
        check(len(burst) == 20 and max(burst) < last_warning,
              f"the burst's 20 lines went out before the warning ({len(burst)} seen)")
        time.sleep(2.5)
        for i in range(30):
            rtd.get(f"/api/last-{i}")
    finally:
        rtd.stop()
    time.sleep(0.3)  # the drain thread reads to the end of the output
    last = [ev for ev in list(rtd.lines) if str(ev.get("path", "")).startswith("/api/last-")]
    check(len(last) == 30 and rtd.logs("stopped"),
          f"a stop writes every buffered line: {len(last)} of 30 access lines, stopped: {bool(rtd.logs('stopped'))}")
    bad = subprocess.run([RTD, "--log-flush-interval", "-1"], capture_output=True, text=True, timeout=10)
    check(bad.returncode == 2 and "--log-flush-interval" in bad.stderr,
          f"a bad --log-flush-interval is refused: {bad.returncode} {bad.stderr.strip()}")


def promtool(rtd):
    tool = shutil.which("promtool")
    if not tool:
        print("# promtool not installed: format check skipped")
        return
    r = subprocess.run([tool, "check", "metrics"], input=rtd.metrics(), text=True, capture_output=True, timeout=30)
    check(r.returncode == 0, "promtool check metrics: " + (r.stdout + r.stderr).strip()[:300])


def handshake_rate():
    rtd = Rtd("--max-handshakes-per-ip", "1")
    try:
        statuses = [handshake(rtd.port) for _ in range(4)]
        refused = statuses.count(429)
        check(refused >= 2, f"handshakes over 1/s from one address: 429 ({statuses})")
        check(rejected(rtd, "handshake_rate_limit") == refused, f"rejected{{handshake_rate_limit}} = {refused}")
    finally:
        rtd.stop()


def main():
    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "data.json"), "w") as f:
        json.dump({"summary": {"total": 5}}, f)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a):
            super().__init__(*a, directory=tmp)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    config = os.path.join(tmp, "rtd.json")
    with open(config, "w") as f:
        json.dump({"pollers": [
            {"name": "good", "url": f"http://127.0.0.1:{httpd.server_address[1]}/data.json", "channel": "good",
             "kpis": {"total": "/summary/total"}, "interval": 60, "timeout": 2},
            {"name": "bad", "url": f"http://127.0.0.1:{free_port()}/data.json", "channel": "bad",
             "interval": 60, "retry_initial": 60, "timeout": 2}]}, f)
    rtd = Rtd("--threads", "2", "--max-connections", "3", "--max-connections-per-org", "1",
              "--allowed-origin", "http://ok.example", "--jwt-secret", SECRET, "--config", config)
    try:
        asyncio.run(connections(rtd))
        sources(rtd)  # first: the sources' own publications are done before fanout counts
        fanout(rtd, 2)
        access_log(rtd)
        promtool(rtd)
    finally:
        rtd.stop()
    try:
        log_writes(config)
    finally:
        httpd.shutdown()
    handshake_rate()
    print(f"{len(failures)} failure(s)" if failures else "all passed")
    sys.exit(1 if failures else 0)


main()
