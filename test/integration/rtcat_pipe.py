#!/usr/bin/python3
"""rtcat in pipe mode against rtd: each stdin line is sent, each message is one stdout line,
and rtcat waits -w seconds after stdin ends for the replies.
Usage: rtcat_pipe.py PATH_TO_RTD PATH_TO_RTCAT
"""
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time

import websockets

from rtdtest import check, failures
from rtdtest import start_rtd as start_rtd_with

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
