#!/usr/bin/python3
"""rtd data sources and rtctl end to end.

Starts a local HTTP server (python3 -m http.server) and an HTTPS one (self-signed certificate
made with the openssl tool) serving a JSON file, rtd with a config file holding pollers of
both and the system metrics source, then drives rtctl and the
REST fallback: poller KPIs and `changes`, refresh, broadcast with KEY=VALUE pairs, --json,
--server, exit codes, and an invalid config file. The auth defaults: `rtd --jwt-secret S`
alone refuses anonymous WebSocket subscriptions (UNAUTHORIZED), SSE streams and REST reads of
tenant data; `--allow-anonymous` opens them again. `--reuse-port`: two processes on one port.
Usage: rtd_tools.py PATH_TO_RTD PATH_TO_RTCTL
"""
import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from rtdtest import RawClient

RTD, RTCTL = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_for(pred, limit=10.0):
    end = time.time() + limit
    while time.time() < end:
        try:
            if pred():
                return True
        except (KeyError, TypeError, IndexError):
            pass
        time.sleep(0.05)
    return False


def rtctl(*args):
    p = subprocess.run([RTCTL, *args], capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout, p.stderr


def get_with(port, path, headers):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def security():
    """rtd's security flags from the environment, rtctl token and --api-key."""
    p = subprocess.run([RTD, "--help"], capture_output=True, text=True, timeout=20)
    check(all(f in p.stdout for f in ["--jwt-secret", "--auth-required", "--admin-key",
                                      "--allowed-origin", "--max-messages-per-second",
                                      "--max-connections-per-org", "--max-handshakes-per-ip"]),
          "rtd --help lists the security options")
    p = subprocess.run([RTD, "--port", "0", "--auth-required"], capture_output=True, text=True,
                       timeout=20, env={k: v for k, v in os.environ.items() if k != "RTD_JWT_SECRET"})
    check(p.returncode == 2 and "--jwt-secret" in p.stderr, "--auth-required without a secret")
    env = dict(os.environ, RTD_JWT_SECRET="tools-secret", RTD_ADMIN_KEY="tools-key",
               RTD_AUTH_REQUIRED="1", FRONTEND_URL="https://a.example,https://b.example")
    env.pop("RTD_API_KEY", None)
    rtd = subprocess.Popen([RTD, "--host", "127.0.0.1", "--port", "0"], stdout=subprocess.PIPE,
                           text=True, env=env)
    port = None
    for out in rtd.stdout:
        ev = json.loads(out)
        if ev.get("event") == "listening":
            port = ev["port"]
            break
    url = f"http://127.0.0.1:{port}"
    try:
        rc, token, err = rtctl("token", "--secret", "tools-secret", "--sub", "alice", "--org", "acme")
        token = token.strip()
        check(rc == 0 and token.count(".") == 2, "rtctl token mints a JWT")
        rc, _, err = rtctl("token", "--sub", "alice")
        check(rc == 2, "rtctl token without secret or org is a usage error")
        check(get(port, "/api/health")[0] == 200, "health stays open with an admin key")
        rc, out, err = rtctl("--url", url, "stats")
        check(rc == 1 and "401" in err, "rtctl without the admin key gets 401")
        rc, out, err = rtctl("--url", url, "--api-key", "tools-key", "broadcast", "kpi", "--org",
                             "acme", "health_score=93")
        check(rc == 0, "rtctl --api-key broadcasts")
        p = subprocess.run([RTCTL, "--url", url, "stats"], capture_output=True, text=True,
                           timeout=20, env=dict(os.environ, RTD_API_KEY="tools-key"))
        check(p.returncode == 0, "RTD_API_KEY is rtctl's key")
        path = "/api/dashboard?channel=kpi&org=acme"
        st, body = get_with(port, path, {"Authorization": "Bearer " + token})
        check(st == 200 and body["data"]["health_score"] == 93, "rtctl's token reads its org over REST")
        check(get_with(port, path, {})[0] == 401, "no token, no tenant data")
        other = rtctl("token", "--secret", "tools-secret", "--sub", "eve", "--org", "globex")[1].strip()
        check(get_with(port, path, {"Authorization": "Bearer " + other})[0] == 401,
              "another org's token is refused")
        forged = rtctl("token", "--secret", "wrong", "--sub", "alice", "--org", "acme")[1].strip()
        check(get_with(port, path, {"Authorization": "Bearer " + forged})[0] == 401,
              "a token signed with another secret is refused")
        st, _ = get_with(port, "/api/health", {"Origin": "https://b.example"})
        check(st == 200, "FRONTEND_URL origins get REST answers")
    finally:
        rtd.send_signal(signal.SIGTERM)
        check(rtd.wait(timeout=15) == 0, "secured rtd exits 0 on SIGTERM")


def start_rtd_env(*args, env=None):
    rtd = subprocess.Popen([RTD, "--host", "127.0.0.1", "--port", "0", *args],
                           stdout=subprocess.PIPE, text=True, env=env)
    for out in rtd.stdout:
        ev = json.loads(out)
        if ev.get("event") == "listening":
            return rtd, ev["port"]
    raise RuntimeError("rtd did not start")


def reuse_port():
    """--reuse-port: two rtd processes bound to one port, the kernel spreading connections over
    both; without it the second cannot bind and says why."""
    def start(port, *args):
        p = subprocess.Popen([RTD, "--host", "127.0.0.1", "--port", str(port), *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for out in p.stdout:
            ev = json.loads(out)
            if ev.get("event") == "listening":
                return p, ev["port"]
        return p, None

    def sockets(pid):
        n = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
            except OSError:
                pass
        return n

    a, port = start(0, "--reuse-port")
    b, port_b = start(port, "--reuse-port")
    conns = []
    try:
        check(port_b == port, "a second rtd --reuse-port binds the same port")
        before = (sockets(a.pid), sockets(b.pid))
        greeted = 0
        for _ in range(40):
            c = RawClient(port, timeout=5)
            conns.append(c)
            payload = c.frame()[3]
            greeted += c.status == 101 and b'"connected"' in payload
        check(greeted == 40, f"every connection upgraded and greeted ({greeted}/40)")
        grown = (sockets(a.pid) - before[0], sockets(b.pid) - before[1])
        check(grown[0] > 0 and grown[1] > 0 and sum(grown) == 40,
              f"the kernel spread the connections over both processes {grown}")
        c, _ = start(port)
        err = c.stderr.read() if c.wait(timeout=15) else ""
        check(c.returncode != 0 and "address" in err.lower(),
              f"without --reuse-port the port in use is refused, saying so ({err.strip()[:80]})")
    finally:
        for c in conns:
            c.close()
        for p in (a, b):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=15)


def sse_status(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path, headers=headers or {})
    st = c.getresponse().status
    c.close()
    return st


async def ws_exchange(port, messages, token=None):
    """Opens /ws (a Bearer token at the handshake when given), sends each message and
    returns each answer (skipping heartbeats, initial values and updates)."""
    import websockets
    headers = {"Authorization": "Bearer " + token} if token else {}
    answers = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", extra_headers=headers) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello["type"] == "connected"
        for m in messages:
            await ws.send(json.dumps(m))
            while True:
                a = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if a["type"] not in ("heartbeat", "initial", "update"):
                    break
            answers.append(a)
    return answers


def auth_defaults():
    """A secret implies required tokens; --allow-anonymous (trusted networks) opens again."""
    p = subprocess.run([RTD, "--help"], capture_output=True, text=True, timeout=20)
    check("--allow-anonymous" in p.stdout and "TRUSTED NETWORKS ONLY" in p.stdout,
          "rtd --help: --allow-anonymous, trusted networks only")
    p = subprocess.run([RTD, "--port", "0", "--jwt-secret", "s", "--auth-required",
                        "--allow-anonymous"], capture_output=True, text=True, timeout=20)
    check(p.returncode == 2 and "contradict" in p.stderr,
          "--auth-required with --allow-anonymous is a usage error")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTD_")}
    sub = {"type": "subscribe", "channel": "kpi", "scope": {"org": "acme"}, "id": "s"}
    token = rtctl("token", "--secret", "S", "--sub", "alice", "--org", "acme")[1].strip()
    dash = "/api/dashboard?channel=kpi&org=acme"
    rtd, port = start_rtd_env("--jwt-secret", "S", "--demo", "--demo-interval", "200", env=env)
    try:
        a = asyncio.run(ws_exchange(port, [{"type": "ping", "id": "p"}, sub,
                                           {"type": "get", "channel": "kpi", "scope": {"org": "acme"}},
                                           {"type": "authenticate", "token": token, "id": "a"}, sub]))
        check(a[0]["type"] == "pong", "--jwt-secret alone: ping answered without a token")
        check(a[1]["type"] == "error" and a[1]["code"] == "UNAUTHORIZED",
              f"--jwt-secret alone: an unauthenticated subscribe gets UNAUTHORIZED ({a[1]})")
        check(a[2]["type"] == "error" and a[2]["code"] == "UNAUTHORIZED",
              "--jwt-secret alone: an unauthenticated get gets UNAUTHORIZED")
        check(a[3]["type"] == "authenticated" and a[4]["type"] == "subscribed",
              f"--jwt-secret alone: after authenticate, subscribe works ({a[3:]})")
        a = asyncio.run(ws_exchange(port, [sub], token=token))
        check(a[0]["type"] == "subscribed", "--jwt-secret alone: a token at the handshake")
        check(sse_status(port, "/sse?channel=kpi&org=acme") == 401,
              "--jwt-secret alone: SSE without a token is refused (401)")
        check(sse_status(port, "/sse?channel=kpi&org=acme",
                         {"Authorization": "Bearer " + token}) == 200, "SSE with a token")
        check(get_with(port, dash, {})[0] == 401 and get_with(port, "/api/kpis?channel=kpi&org=acme", {})[0] == 401,
              "--jwt-secret alone: REST reads of tenant data need a token")
        time.sleep(0.5)
        check(get_with(port, dash, {"Authorization": "Bearer " + token})[0] == 200,
              "REST read with the org's token")
    finally:
        rtd.send_signal(signal.SIGTERM)
        rtd.wait(timeout=15)
    env_open = dict(env, RTD_JWT_SECRET="S", RTD_ALLOW_ANONYMOUS="1")
    rtd, port = start_rtd_env("--demo", "--demo-interval", "200", env=env_open)
    try:
        globex = dict(sub, scope={"org": "globex"})
        a = asyncio.run(ws_exchange(port, [globex]))
        check(a[0]["type"] == "subscribed",
              f"--allow-anonymous: an anonymous client subscribes to any org ({a[0]})")
        check(sse_status(port, "/sse?channel=kpi&org=acme") == 200,
              "--allow-anonymous: SSE without a token")
        time.sleep(0.5)
        check(get_with(port, dash, {})[0] == 200, "--allow-anonymous: REST read without a token")
        a = asyncio.run(ws_exchange(port, [{"type": "authenticate", "token": token, "id": "a"},
                                           globex]))
        check(a[1]["type"] == "error" and a[1]["code"] == "UNAUTHORIZED",
              "--allow-anonymous: an authenticated client stays inside its org")
    finally:
        rtd.send_signal(signal.SIGTERM)
        rtd.wait(timeout=15)


def main():
    tmp = tempfile.mkdtemp(prefix="rtd_tools_")
    data = os.path.join(tmp, "data.json")
    with open(data, "w") as f:
        json.dump({"summary": {"total": 5, "ok": 4}, "items": [1, 2, 3]}, f)
    upstream = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
         "--directory", tmp], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = upstream.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...)"
    up_port = int(line.split(" port ")[1].split()[0])
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    tls_server = subprocess.Popen([sys.executable, "-u", "-c", f"""
import functools, http.server, ssl
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory={tmp!r})
httpd = http.server.HTTPServer(("127.0.0.1", 0), h)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain({cert!r}, {key!r})
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print(httpd.server_address[1])
httpd.serve_forever()
"""], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    tls_port = int(tls_server.stdout.readline())
    config = os.path.join(tmp, "rtd.json")
    with open(config, "w") as f:
        json.dump({
            "system_metrics": {"interval": 0.5, "on_demand": False},
            "pollers": [{
                "name": "ext", "url": f"http://127.0.0.1:{up_port}/data.json",
                "channel": "ext", "scope": {"org": "acme"},
                "kpis": {"total": "/summary/total", "ok": "/summary/ok"},
                "interval": 0.2, "timeout": 2},
                {"name": "sec", "url": f"https://localhost:{tls_port}/data.json",
                 "ca_file": cert, "channel": "sec", "kpis": {"total": "/summary/total"},
                 "interval": 0.2, "timeout": 2},
                {"name": "untrusted", "url": f"https://localhost:{tls_port}/data.json",
                 "channel": "untrusted", "interval": 0.2, "timeout": 2}]}, f)
    rtd = subprocess.Popen([RTD, "--host", "127.0.0.1", "--port", "0", "--config", config],
                           stdout=subprocess.PIPE, text=True)
    port = None
    for out in rtd.stdout:
        ev = json.loads(out)
        if ev.get("event") == "listening":
            port = ev["port"]
            break
    url = f"http://127.0.0.1:{port}"
    try:
        check(wait_for(lambda: get(port, "/api/kpis?channel=ext&org=acme")[1]["data"]["total"] == 5),
              "poller publishes KPIs chosen by JSON pointers")
        check(wait_for(lambda: get(port, "/api/kpis?channel=sec")[1]["data"]["total"] == 5),
              "https poller with a trusted CA file")

        def untrusted():
            src = [s for s in get(port, "/api/stats")[1]["stats"]["sources"]
                   if s["name"] == "untrusted"][0]
            return src["errors"] >= 1 and "TLS handshake" in src["last_error"]
        check(wait_for(untrusted), "https poller refuses a certificate no CA vouches for")
        check(get(port, "/api/kpis?channel=untrusted")[0] == 404, "nothing published untrusted")
        st, body = get(port, "/api/dashboard?channel=ext&org=acme")
        check(st == 200 and body["data"]["items"] == [1, 2, 3], "dashboard route has the complete data")
        with open(data, "w") as f:
            json.dump({"summary": {"total": 9, "ok": 4}}, f)
        check(wait_for(lambda: get(port, "/api/kpis?channel=ext&org=acme")[1]["data"]["total"] == 9),
              "poller picks up new upstream content")
        body = get(port, "/api/kpis?channel=ext&org=acme")[1]
        check(body["data"]["changes"] == {"total_change": 4, "ok_change": 0}, "KPI changes")
        check(wait_for(lambda: get(port, "/api/kpis?channel=metrics")[1]["data"]["cpu_cores"] >= 1),
              "system metrics KPIs")
        body = get(port, "/api/dashboard?channel=metrics")[1]["data"]
        check(body["hostname"] != "" and len(body["top_processes"]) <= 10
              and len(body["network_interfaces"]) >= 1, "system metrics complete data")
        stats = get(port, "/api/stats")[1]["stats"]["sources"]
        names = sorted(s["name"] for s in stats)
        check(names == ["ext", "sec", "system_metrics", "untrusted"], "sources in /api/stats")

        rc, out, err = rtctl("--server", url, "--json", "health")
        check(rc == 0 and json.loads(out)["status"] == "ok" and "\n" not in out.strip(),
              "rtctl --server --json health")
        rc, out, err = rtctl("--url", url, "refresh", "ext", "--org", "acme")
        check(rc == 0 and "refreshing: true" in out and "topic:" in out, "rtctl refresh CHANNEL")
        rc, out, err = rtctl("--url", url, "refresh", "nosuch")
        check(rc == 1 and "error ROOM_NOT_FOUND:" in err, "rtctl refresh without a source exits 1")
        rc, out, err = rtctl("--url", url, "--json", "broadcast", "kpi", "--org", "acme",
                             "health_score=92", "status=green", "ok=true")
        check(rc == 0 and json.loads(out)["topic"] == "kpi:org:acme", "rtctl broadcast KEY=VALUE")
        data_now = get(port, "/api/dashboard?channel=kpi&org=acme")[1]["data"]
        check(data_now == {"health_score": 92, "status": "green", "ok": True},
              "KEY=VALUE values typed as JSON")
        rc, out, err = rtctl("--url", url, "broadcast", "kpi", "--data", '{"a":1}', "b=2")
        check(rc == 0, "rtctl broadcast --data plus KEY=VALUE")
        check(get(port, "/api/dashboard?channel=kpi")[1]["items"][0]["data"] == {"a": 1, "b": 2},
              "pairs merged into --data")
        rc, out, err = rtctl("--url", url, "--json", "broadcast", "notes", "--org", "acme",
                             "--requires-ack", "--data", '{"m":1}')
        sent = json.loads(out) if rc == 0 else {}
        check(rc == 0 and sent.get("requires_ack") is True and sent.get("id"),
              f"rtctl broadcast --requires-ack gets a delivery id ({out.strip()})")
        rc, out, err = rtctl("--url", url, "--json", "delivery", sent.get("id", "x"))
        report = json.loads(out) if rc == 0 else {}
        check(rc == 0 and report.get("topic") == "notes:org:acme" and report.get("targeted") == 0
              and report.get("acked") == 0, f"rtctl delivery ID: the ack report ({out.strip()})")
        rc, out, err = rtctl("--url", url, "delivery", "nosuch")
        check(rc == 1 and "NOT_FOUND" in err, "rtctl delivery of an unknown id exits 1")
        rc, out, err = rtctl("--url", url, "broadcast", "kpi", "novalue")
        check(rc == 2, "rtctl bad KEY=VALUE is a usage error")
        rc, out, err = rtctl("--url", url, "--server", url, "health")
        check(rc == 2, "rtctl --url with --server is a usage error")
        rc, out, err = rtctl("--url", "http://127.0.0.1:1", "health")
        check(rc == 3, "rtctl cannot connect exits 3")
        rc, out, err = rtctl("--url", url, "stats")
        check(rc == 0 and "active_connections:" in out and "NAME" in out and "system_metrics" in out,
              "rtctl stats (human form: fields and a sources table)")
        rc, out, err = rtctl("--url", url, "rooms")
        check(rc == 0 and out.startswith("NAME"), "rtctl rooms (table)")
        rc, out, err = rtctl("--url", url, "health")
        check(rc == 0 and "status:" in out and "ok" in out, "rtctl health (human form)")
        rc, out, err = rtctl("--url", url, "--json", "rooms")
        check(rc == 0 and json.loads(out)["success"], "rtctl rooms")
        rc, out, err = rtctl("--url", url, "--json", "connections", "--org", "acme")
        check(rc == 0 and json.loads(out)["total_count"] == 0, "rtctl connections --org")
        rc, out, err = rtctl("--url", url, "connection", "c999")
        check(rc == 1 and "NOT_FOUND" in err, "rtctl connection of an unknown id exits 1")
        rc, out, err = rtctl("--url", url, "broadcast", "kpi", "--data", "@/nonexistent.json")
        check(rc == 2, "rtctl --data @missing-file is a usage error")
        rc, out, err = rtctl("--url", url, "frobnicate")
        check(rc == 2, "rtctl unknown command exits 2")
        env = dict(os.environ, RTD_URL=url)
        p = subprocess.run([RTCTL, "--json", "health"], capture_output=True, text=True,
                           timeout=20, env=env)
        check(p.returncode == 0 and json.loads(p.stdout)["status"] == "ok", "rtctl uses $RTD_URL")
    finally:
        rtd.send_signal(signal.SIGTERM)
        check(rtd.wait(timeout=15) == 0, "rtd exits 0 on SIGTERM")
        upstream.terminate()
        upstream.wait(timeout=5)
        tls_server.terminate()
        tls_server.wait(timeout=5)

    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        json.dump({"pollers": [{"name": "x", "url": "ftp://example.com/", "channel": "c"}]}, f)
    p = subprocess.run([RTD, "--port", "0", "--config", bad], capture_output=True, text=True,
                       timeout=20)
    check(p.returncode == 2 and "pollers[0].url" in p.stderr, "invalid config stops rtd naming the setting")
    p = subprocess.run([RTD, "--port", "0", "--config", os.path.join(tmp, "missing.json")],
                       capture_output=True, text=True, timeout=20)
    check(p.returncode == 2 and "cannot read" in p.stderr, "missing config file")

    security()
    auth_defaults()
    reuse_port()

    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all passed")


main()
