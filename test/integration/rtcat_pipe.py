#!/usr/bin/python3
"""rtcat in pipe mode against rtd: each stdin line is sent, each message is one stdout line,
and rtcat waits -w seconds after stdin ends for the replies. A listener (--subscribe,
--reconnect) stays connected after stdin ends until SIGINT/SIGTERM. The wscat flags: -H, -o,
-s, -p, --auth, -L, --slash, -P, --no-color (under a pseudo-terminal), --cert/--key (against a
Python server that requires a client certificate). --token-command: a connection, plain or
--reconnect (rtpush::client's token provider), re-authenticates on `token_expiring` and outlives
its tokens; a fixed --token does not.
Usage: rtcat_pipe.py PATH_TO_RTD PATH_TO_RTCAT
       rtcat_pipe.py --mint SECRET COUNT_FILE   (the token command: prints a token that rtd's
                                                 30 s leeway lets live 3-4 s more)
"""
import asyncio
import http
import json
import os
import pty
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import websockets

from rtdtest import check, failures, hs256_token, make_pki
from rtdtest import start_rtd as start_rtd_with

TOKEN_SECRET = "token-command-secret"


def mint(secret, count_file):
    """An HS256 token for alice of acme whose exp lies 26 s in the past: rtd accepts it for
    its leeway (30 s), so a connection holding it ends 3-4 s from now unless it
    re-authenticates."""
    with open(count_file, "a") as f:
        f.write("minted\n")
    return hs256_token(secret, {"sub": "alice", "org": "acme", "exp": int(time.time()) - 26})


if len(sys.argv) == 4 and sys.argv[1] == "--mint":
    print(mint(sys.argv[2], sys.argv[3]))
    sys.exit(0)

RTD, RTCAT = sys.argv[1], sys.argv[2]


def start_rtd(port=0):
    return start_rtd_with(RTD, "--demo", "--demo-interval", "200", "--heartbeat-interval", "1", port=port)


def rtcat(args, stdin=""):
    r = subprocess.run([RTCAT] + args, input=stdin, capture_output=True, text=True, timeout=30)
    msgs = []
    for line in r.stdout.splitlines():
        try:
            msgs.append(json.loads(line))
        except ValueError:
            msgs.append({"type": "NOT JSON", "line": line})
    return r, msgs


def of_type(msgs, t):
    return [m for m in msgs if m.get("type") == t]


def start_echo_server():
    """A plain WebSocket echo server (Python websockets): rtcat is not rtpush-only."""
    ready = threading.Event()
    box = {}

    async def echo(ws, path=None):
        async for m in ws:
            await ws.send(m)

    async def main():
        async with websockets.serve(echo, "127.0.0.1", 0) as server:
            box["port"] = server.sockets[0].getsockname()[1]
            ready.set()
            await asyncio.Future()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    ready.wait(10)
    return box["port"]


def start_inspect_server(ssl_context=None):
    """A Python websockets server that answers each connection with what it received (path,
    request headers, the negotiated subprotocol), then echoes. /old redirects to /new, /loop
    to itself. Every request's headers are kept in `seen` (also refused ones)."""
    ready = threading.Event()
    box = {"seen": []}

    async def process_request(path, headers):
        box["seen"].append((path, dict(headers)))
        if path == "/old":
            return http.HTTPStatus.FOUND, [("Location", "/new")], b""
        if path == "/loop":
            return http.HTTPStatus.MOVED_PERMANENTLY, [("Location", "/loop")], b""
        return None

    async def handler(ws, path=None):
        await ws.send(json.dumps({"path": ws.path, "headers": dict(ws.request_headers),
                                  "subprotocol": ws.subprotocol}))
        async for m in ws:
            await ws.send(m)

    async def main():
        async with websockets.serve(handler, "127.0.0.1", 0, subprotocols=["chat", "rtpush"],
                                    process_request=process_request, ssl=ssl_context) as server:
            box["port"] = server.sockets[0].getsockname()[1]
            ready.set()
            await asyncio.Future()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    ready.wait(10)
    return box


def rtcat_tty(args):
    """rtcat with stdout on a pseudo-terminal (so it thinks a person is watching)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([RTCAT] + args, stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        out += chunk
    p.wait(timeout=20)
    os.close(master)
    return p.returncode, out.decode(errors="replace")


# -H, -o, -s, -p, --auth: what the server received
insp = start_inspect_server()
iurl = f"ws://127.0.0.1:{insp['port']}"
r, msgs = rtcat(["-c", iurl + "/h", "-H", "X-One: 1", "-H", "X-Two:two words", "-o",
                 "http://dash.example", "-s", "rtpush", "--auth", "user:pa:ss", "-p", "13",
                 "-w", "0.3"], "")
check(r.returncode == 0, f"-H/-o/-s/--auth: exits 0 ({r.stderr!r})")
got = msgs[0] if msgs else {}
hdrs = {k.lower(): v for k, v in got.get("headers", {}).items()}
check(hdrs.get("x-one") == "1" and hdrs.get("x-two") == "two words", f"-H: both headers ({hdrs})")
check(hdrs.get("origin") == "http://dash.example", "-o: Origin header")
check(hdrs.get("sec-websocket-protocol") == "rtpush" and got.get("subprotocol") == "rtpush",
      f"-s: Sec-WebSocket-Protocol sent and negotiated ({got.get('subprotocol')})")
check(hdrs.get("authorization") == "Basic dXNlcjpwYTpzcw==", f"--auth: Basic header ({hdrs})")
check(hdrs.get("sec-websocket-version") == "13", "-p 13: Sec-WebSocket-Version 13")
r, _ = rtcat(["-c", iurl + "/p8", "-p", "8", "-w", "0"], "")
seen = [h for p_, h in insp["seen"] if p_ == "/p8"]
check(seen and {k.lower(): v for k, v in seen[-1].items()}.get("sec-websocket-version") == "8",
      "-p 8: Sec-WebSocket-Version 8 sent")
check(r.returncode == 1 and "HTTP 4" in r.stderr, f"-p 8: a version-13 server refuses ({r.stderr!r})")
for bad in (["-p", "9"], ["--auth", "nocolon"], ["--auth", "a:b", "--token", "t"],
            ["--cert", "c.pem"]):
    r, _ = rtcat(["-c", iurl + "/", *bad])
    check(r.returncode == 2, f"{bad}: usage error, exit 2 ({r.returncode})")

# -L: follow redirections; without it, the error names the target and -L
r, msgs = rtcat(["-c", iurl + "/old", "-L", "-w", "0.3"], "")
check(r.returncode == 0 and msgs and msgs[0].get("path") == "/new",
      f"-L: redirected to /new ({r.stderr!r}, {msgs[:1]})")
check(f"redirected (HTTP 302) to ws://127.0.0.1:{insp['port']}/new" in r.stderr,
      "-L: the redirection is noted on stderr")
r, msgs = rtcat(["-c", iurl + "/old", "-w", "0"], "")
check(r.returncode == 1 and "HTTP 302" in r.stderr and "-L follows" in r.stderr,
      f"no -L: exit 1 naming -L ({r.stderr!r})")
r, _ = rtcat(["-c", iurl + "/loop", "-L", "-w", "0"], "")
check(r.returncode == 1 and "more than 10 redirections" in r.stderr,
      f"-L: a redirection loop stops ({r.stderr!r})")

# --no-color: escapes only on a terminal without it
code, out = rtcat_tty(["-c", iurl + "/", "-x", "hello", "-w", "0.5"])
check(code == 0 and "\x1b[32m< hello" in out, f"terminal: coloured '< ' lines ({out!r})")
code, out = rtcat_tty(["-c", iurl + "/", "-x", "hello", "-w", "0.5", "--no-color"])
check(code == 0 and "< hello" in out and "\x1b[" not in out, f"--no-color: no escapes ({out!r})")

# --cert/--key: a server that requires a client certificate
with tempfile.TemporaryDirectory() as pki:
    make_pki(pki)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(pki, "server.pem"), os.path.join(pki, "server.key"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(os.path.join(pki, "ca.pem"))
    tls_srv = start_inspect_server(ctx)
    wss = f"wss://localhost:{tls_srv['port']}/"
    ca = os.path.join(pki, "ca.pem")
    r, msgs = rtcat(["-c", wss, "--ca", ca, "--cert", os.path.join(pki, "client.pem"), "--key",
                     os.path.join(pki, "client.key"), "-x", "tls hi", "-w", "0.5"])
    check(r.returncode == 0 and any(m.get("line") == "tls hi" for m in msgs),
          f"--cert/--key: accepted by a server that requires a client certificate ({r.stderr!r})")
    r, _ = rtcat(["-c", wss, "--ca", ca, "-x", "x", "-w", "0.5"])
    check(r.returncode == 1, f"without --cert: refused ({r.stderr!r})")
    r, _ = rtcat(["-c", wss, "--ca", ca, "--cert", os.path.join(pki, "client.pem"), "--key",
                  os.path.join(pki, "server.key"), "-x", "x"])
    check(r.returncode != 0 and "key" in r.stderr.lower(), f"a key of another certificate: an error ({r.stderr!r})")

echo_port = start_echo_server()
r, msgs = rtcat(["-c", f"ws://127.0.0.1:{echo_port}/", "-w", "1"], "hello\nworld 2\n")
check(r.returncode == 0, f"echo server: exits 0 (got {r.returncode}, stderr {r.stderr!r})")
check(r.stdout.splitlines() == ["hello", "world 2"], f"echo server: lines echoed ({r.stdout!r})")

rtd, port = start_rtd()
url = f"ws://127.0.0.1:{port}/ws"
try:
    # plain pipe mode: the lines are sent in order once connected, the replies arrive
    # within -w after stdin ends
    sub = {"type": "subscribe", "channel": "kpi",
           "scope": {"org": "acme", "dept": "support", "queue": "email"}, "id": "s1"}
    r, msgs = rtcat(["-c", url, "-w", "1"], '{"type":"ping","id":1}\n' + json.dumps(sub) + "\n")
    check(r.returncode == 0, f"pipe mode exits 0 (got {r.returncode}, stderr {r.stderr!r})")
    check(not of_type(msgs, "NOT JSON"), "every stdout line is one JSON message")
    check(msgs and msgs[0]["type"] == "connected", "first line: connected")
    check([m["id"] for m in of_type(msgs, "pong")] == [1], "pong for the ping")
    check([m["id"] for m in of_type(msgs, "subscribed")] == ["s1"], "subscribed answer")
    initial = of_type(msgs, "initial")
    check(len(initial) == 2 and initial[0]["phase"] == "kpis", "initial values, kpis first")

    # -x: execute, wait, exit without reading stdin
    r, msgs = rtcat(["-c", url, "-x", '{"type":"ping","id":"x1"}', "-x",
                     '{"type":"ping","id":"x2"}', "-w", "0.5"])
    check(r.returncode == 0, "-x exits 0")
    check([m["id"] for m in of_type(msgs, "pong")] == ["x1", "x2"], "-x commands sent in order")

    # --reconnect --subscribe: rtpush::client underneath, states on stderr
    r, msgs = rtcat(["-c", url, "--reconnect", "--json", "--subscribe", "kpi:acme:sales",
                     "-w", "1"], '{"type":"ping","id":2}\n')
    check(r.returncode == 0, "--reconnect exits 0")
    check([m["id"] for m in of_type(msgs, "pong")] == [2], "--reconnect: stdin line sent")
    subs = of_type(msgs, "subscribed")
    check(len(subs) == 1 and subs[0]["topic"] == "kpi:org:acme:dept:sales", "--subscribe")
    check(len(of_type(msgs, "initial")) >= 2, "--subscribe: initial values")
    check("# connected" in r.stderr and "# stopped" in r.stderr, "states on stderr")

    # --reconnect across a restart of rtd: a new epoch, so not recovered, and a fresh snapshot
    # (files, not pipes, for its output: an undrained pipe would block rtcat)
    out_f, err_f = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    cat = subprocess.Popen([RTCAT, "-c", url, "--reconnect", "--subscribe", "kpi:acme", "-w", "0"],
                           stdin=subprocess.PIPE, stdout=out_f, stderr=err_f, text=True)
    time.sleep(1)
    rtd.terminate()
    rtd.wait(timeout=10)
    rtd, _ = start_rtd(port)
    time.sleep(2)
    cat.communicate("", timeout=30)
    out_f.seek(0)
    err_f.seek(0)
    out, err = out_f.read(), err_f.read()
    epochs = {json.loads(l)["epoch"] for l in out.splitlines() if '"epoch"' in l}
    check("# reconnecting" in err, "--reconnect: reconnects after rtd stops")
    check("not recovered: epoch_mismatch" in err, f"--reconnect: new epoch, not recovered ({err!r})")
    check(len(epochs) == 2, "--reconnect: messages of both epochs")

    # A listener stays connected after stdin ends, until SIGINT/SIGTERM
    for args, sig in ((["--subscribe", "kpi:acme"], signal.SIGINT),
                      (["--reconnect", "--subscribe", "kpi:acme"], signal.SIGTERM),
                      (["--reconnect"], signal.SIGINT)):
        out_f, err_f = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        cat = subprocess.Popen([RTCAT, "-c", url, *args], stdin=subprocess.DEVNULL, stdout=out_f,
                               stderr=err_f, text=True)
        time.sleep(3.5)
        alive = cat.poll() is None
        cat.send_signal(sig)
        try:
            code = cat.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cat.kill()
            code = "hung"
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
        check(alive, f"{args}: still connected 3.5 s after stdin ended ({err!r})")
        check("staying connected" in err, f"{args}: says it stays")
        check(code == 0, f"{args}: {sig.name} ends it with exit 0 (got {code}, {err!r})")
        if "--subscribe" in args:
            ups = [l for l in out.splitlines() if '"type":"update"' in l]
            check(len(ups) >= 5, f"{args}: updates kept arriving after stdin ended ({len(ups)})")
    # an explicit -w still leaves
    t0 = time.time()
    r, _ = rtcat(["-c", url, "--subscribe", "kpi:acme", "-w", "0.5"], "")
    check(r.returncode == 0 and time.time() - t0 < 5, "--subscribe with -w 0.5: leaves")

    # -P: received pings (rtd pings every heartbeat, 1 s here) on stderr; --slash
    r, _ = rtcat(["-c", url, "-P", "--slash", "-w", "2.5"],
                 "/ping hi there\n/pong\n/bogus\n")
    check(r.returncode == 0, f"-P --slash: exits 0 ({r.stderr!r})")
    check("< Received ping" in r.stderr, f"-P: rtd's heartbeat ping shown ({r.stderr!r})")
    check('< Received pong (data: "hi there")' in r.stderr, "--slash /ping: rtd's pong shown")
    check("unknown command /bogus" in r.stderr, "--slash: an unknown command is named")
    r, _ = rtcat(["-c", url, "-w", "2.5"], "")
    check("Received ping" not in r.stderr, "without -P: pings not shown")
    r, _ = rtcat(["-c", url, "--slash", "-w", "5"], "/close 4001 done here\n")
    check(r.returncode == 0 and "Disconnected (code: 4001," in r.stderr,
          f"--slash /close CODE REASON: the server's answer, exit 0 ({r.stderr!r})")
    r, msgs = rtcat(["-c", url, "-w", "0.5"], '/ping\n')
    check(any(m.get("type") == "error" for m in msgs), "without --slash: /ping is a message")

    # -o: rtd's origin check sees it
    orig, oport = start_rtd_with(RTD, "--allowed-origin", "http://good.example")
    try:
        ourl = f"ws://127.0.0.1:{oport}/ws"
        r, msgs = rtcat(["-c", ourl, "-o", "http://good.example", "-w", "0.3"], "")
        check(r.returncode == 0 and msgs and msgs[0]["type"] == "connected", "-o: an allowed Origin")
        r, _ = rtcat(["-c", ourl, "-o", "http://evil.example", "-w", "0.3"], "")
        check(r.returncode == 1 and "403" in r.stderr, f"-o: another Origin refused ({r.stderr!r})")
    finally:
        orig.terminate()
        orig.wait(timeout=10)

    # --token-command: every connection and every `token_expiring` asks the command for a
    # token; the connection outlives each token (3-4 s) by re-authenticating on it.
    trd, tport = start_rtd_with(RTD, "--jwt-secret", TOKEN_SECRET, "--token-expiry-warning", "2",
                                "--demo", "--demo-interval", "200")
    try:
        turl = f"ws://127.0.0.1:{tport}/ws"
        count = tempfile.NamedTemporaryFile("w+", delete=False)
        count.close()
        command = f"{sys.executable} {os.path.abspath(__file__)} --mint {TOKEN_SECRET} {count.name}"
        runs = []
        for mode in (["--reconnect", "--token-command", command],
                     ["--token-command", command],
                     ["--reconnect", "--token", None]):
            if mode[-1] is None:  # minted now: it lives 3-4 s from here
                mode[-1] = mint(TOKEN_SECRET, count.name)
            out_f, err_f = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
            cat = subprocess.Popen([RTCAT, "-c", turl, "--json", "--subscribe", "kpi:acme",
                                    *mode], stdin=subprocess.DEVNULL, stdout=out_f,
                                   stderr=err_f, text=True)
            time.sleep(7)
            cat.send_signal(signal.SIGTERM)
            try:
                code = cat.wait(timeout=10)
            except subprocess.TimeoutExpired:
                cat.kill()
                code = "hung"
            out_f.seek(0)
            err_f.seek(0)
            msgs = [json.loads(l) for l in out_f.read().splitlines() if l.startswith("{")]
            runs.append((" ".join(a for a in mode if a.startswith("--")), code, msgs,
                         err_f.read()))
        with open(count.name) as f:
            minted = len(f.readlines())
        os.unlink(count.name)
        for mode, code, msgs, err in runs[:2]:
            expiring = of_type(msgs, "token_expiring")
            ups = of_type(msgs, "update")
            check(code == 0 and len(expiring) >= 2,
                  f"{mode}: token_expiring at least twice in 7 s ({len(expiring)}, exit {code})")
            check("reconnecting" not in err and "Disconnected" not in err and
                  len(of_type(msgs, "connected")) == 1,
                  f"{mode}: one connection outlives its tokens ({err[-300:]!r})")
            check(len(ups) >= 20, f"{mode}: updates kept arriving ({len(ups)})")
        check("# re-authenticated" in runs[1][3], "plain --token-command says it re-authenticated")
        check(minted >= 2 * 3 + 1,
              f"the command was asked at connect and at each warning ({minted})")
        _, _, msgs, err = runs[2]
        check("reconnecting" in err and "1008" in err,
              f"a fixed --token: closed at its expiry, reconnects ({err[-300:]!r})")
    finally:
        trd.terminate()
        trd.wait(timeout=10)
    r, _ = rtcat(["-c", url, "--token-command", "true", "-w", "0"])
    check(r.returncode == 1 and "printed no token" in r.stderr,
          f"--token-command printing nothing: a clear error ({r.stderr!r})")
    r, _ = rtcat(["-c", url, "--token-command", "exit 3", "-w", "0"])
    check(r.returncode == 1 and "status 3" in r.stderr,
          f"--token-command failing: its status named ({r.stderr!r})")
    r, _ = rtcat(["-c", url, "--token-command", "true", "--token", "t"])
    check(r.returncode == 2, "--token-command with --token exits 2")

    # bad input
    r, _ = rtcat(["-c", "http://x"])
    check(r.returncode == 2, "a bad URL exits 2")
    r, _ = rtcat(["-c", url, "--subscribe", "kpi:a:b:c:d"])
    check(r.returncode == 2, "a bad --subscribe exits 2")
    r, _ = rtcat(["-c", "ws://127.0.0.1:1/ws", "-w", "0"])
    check(r.returncode == 1, "connection refused exits 1")
finally:
    rtd.terminate()
    rtd.wait(timeout=10)

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("all passed")
