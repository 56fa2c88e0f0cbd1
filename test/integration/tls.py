#!/usr/bin/python3
"""TLS end to end: rtd --tls-cert/--tls-key serves wss:// and https:// on one port; Python
websockets, rtcat (plain and --reconnect, i.e. rtpush::client), rtctl and curl talk to it with
a throwaway CA made here with the openssl command; a wrong CA is refused with a clear error;
plain HTTP and a silent client on the TLS port fail cleanly and the server keeps serving.
Usage: tls.py PATH_TO_RTD PATH_TO_RTCAT PATH_TO_RTCTL
"""
import asyncio
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import websockets

from rtdtest import check, failures, make_pki, start_rtd

RTD, RTCAT, RTCTL = sys.argv[1], sys.argv[2], sys.argv[3]


def run(args, stdin="", timeout=30):
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout)


def lines_json(out):
    msgs = []
    for line in out.splitlines():
        try:
            msgs.append(json.loads(line))
        except ValueError:
            pass
    return msgs


async def subscriber(url, ctx, want, got, ready):
    async with websockets.connect(url, ssl=ctx, max_size=None) as ws:
        json.loads(await ws.recv())  # connected
        await ws.send(json.dumps({"type": "subscribe", "channel": "kpi", "scope": {"org": "t"}}))
        while True:
            m = json.loads(await ws.recv())
            if m["type"] == "subscribed":
                break
        ready.set()
        while len(got) < want:
            m = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if m["type"] == "update":
                got.append(m)


async def wss_fanout(port, ctx):
    """Two wss subscribers, one wss publisher: small messages in bursts (coalesced writes)
    and large ones (written from the shared frame), all received in order."""
    url = "wss://localhost:%d/ws" % port
    n = 300
    got = [[], []]
    ready = [asyncio.Event(), asyncio.Event()]
    subs = [asyncio.create_task(subscriber(url, ctx, n, got[i], ready[i])) for i in range(2)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 10)
    async with websockets.connect(url, ssl=ctx) as pub:
        await pub.recv()
        for i in range(n):
            data = {"i": i, "pad": "y" * (40000 if i % 50 == 0 else 20)}
            await pub.send(json.dumps({"type": "publish", "channel": "kpi", "scope": {"org": "t"},
                                       "data": data}))
            if i % 90 == 89:
                await asyncio.sleep(1)  # stay under the per-client message rate
    await asyncio.wait_for(asyncio.gather(*subs), 30)
    for g in got:
        check([m["data"]["i"] for m in g] == list(range(n)),
              "wss: a subscriber got all %d publications in order (%d)" % (n, len(g)))
    check(all(len(m["data"]["pad"]) == 40000 for m in got[0] if m["data"]["i"] % 50 == 0),
          "wss: 40 kB messages arrive whole")


async def wss_wrong_ca(port, d):
    ctx = ssl.create_default_context(cafile=os.path.join(d, "other.pem"))
    try:
        async with websockets.connect("wss://localhost:%d/ws" % port, ssl=ctx):
            check(False, "wss with a wrong CA is refused")
    except ssl.SSLCertVerificationError:
        check(True, "wss with a wrong CA is refused (certificate verify failed)")


async def plain_ws_to_tls_port(port):
    try:
        async with websockets.connect("ws://127.0.0.1:%d/ws" % port, open_timeout=5):
            check(False, "ws:// (no TLS) to the TLS port is refused")
    except Exception as e:  # the server drops the connection: no handshake answer
        check(True, "ws:// (no TLS) to the TLS port is refused (%s)" % type(e).__name__)


def main():
    d = tempfile.mkdtemp(prefix="rtpush-tls-")
    try:
        make_pki(d)
        cert, key, ca, other = (os.path.join(d, f) for f in
                                ("server.pem", "server.key", "ca.pem", "other.pem"))

        # Bad files stop startup with a message naming the file.
        r = run([RTD, "--port", "0", "--tls-cert", os.path.join(d, "missing.pem"),
                 "--tls-key", key])
        check(r.returncode != 0 and "missing.pem" in r.stderr,
              "rtd: a missing certificate stops startup: " + r.stderr.strip())
        r = run([RTD, "--port", "0", "--tls-cert", cert, "--tls-key", os.path.join(d, "ca.key")])
        check(r.returncode != 0 and ("does not match" in r.stderr or "mismatch" in r.stderr),
              "rtd: a key of another certificate stops startup: " + r.stderr.strip())
        r = run([RTD, "--port", "0", "--tls-cert", key, "--tls-key", key])
        check(r.returncode != 0 and "certificate" in r.stderr,
              "rtd: a key given as certificate stops startup: " + r.stderr.strip())

        env = dict(os.environ, RTD_TLS_CERT=cert, RTD_TLS_KEY=key)
        proc = subprocess.Popen([RTD, "--host", "127.0.0.1", "--port", "0", "--allow-publish",
                                 "--handshake-timeout", "1"], stdout=subprocess.PIPE, text=True,
                                env=env)
        port = None
        for line in proc.stdout:
            ev = json.loads(line)
            if ev.get("event") == "listening":
                port = ev["port"]
                check(ev.get("tls") is True, "rtd: TLS from RTD_TLS_CERT/RTD_TLS_KEY")
                break
        import threading
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        try:
            https = "https://localhost:%d" % port
            ctx = ssl.create_default_context(cafile=ca)

            # Hostile or confused clients first: the server must keep serving afterwards.
            r = run(["curl", "-sS", "-m", "5", "http://127.0.0.1:%d/api/health" % port])
            check(r.returncode != 0, "curl http:// to the TLS port fails (%s)" % r.stderr.strip())
            asyncio.run(plain_ws_to_tls_port(port))
            s = socket.create_connection(("127.0.0.1", port))
            t0 = time.monotonic()
            s.settimeout(5)
            try:
                closed = s.recv(1) == b""
            except (ConnectionResetError, socket.timeout):
                closed = False
            check(closed and time.monotonic() - t0 < 3,
                  "a client silent before the TLS handshake is closed after the handshake "
                  "timeout (%.1f s)" % (time.monotonic() - t0))
            s.close()

            r = run(["curl", "-sS", "-m", "5", "--cacert", ca, https + "/api/health"])
            check(r.returncode == 0 and json.loads(r.stdout)["status"] == "ok",
                  "curl https:// with the CA: /api/health")
            r = run(["curl", "-sS", "-m", "5", https + "/api/health"])
            check(r.returncode != 0, "curl https:// without the CA fails verification")

            r = run([RTCTL, "--server", https, "--ca", ca, "--json", "health"])
            check(r.returncode == 0 and json.loads(r.stdout)["status"] == "ok",
                  "rtctl --server https:// --ca: health")
            r = run([RTCTL, "--server", https, "--ca", other, "health"])
            check(r.returncode == 3 and "certificate verify failed" in r.stderr,
                  "rtctl with a wrong CA: exit 3, " + r.stderr.strip())
            r = run([RTCTL, "--server", "https://127.0.0.1:%d" % port, "--ca", ca, "health"])
            check(r.returncode == 0, "rtctl https:// by IP address (IP SAN)")

            asyncio.run(wss_fanout(port, ctx))
            asyncio.run(wss_wrong_ca(port, d))

            wss = "wss://localhost:%d/ws" % port
            r = run([RTCAT, "-c", wss, "--ca", ca, "-x", '{"type":"ping","id":7}', "-w", "1"])
            msgs = lines_json(r.stdout)
            check(r.returncode == 0 and any(m.get("type") == "pong" and m.get("id") == 7
                                            for m in msgs),
                  "rtcat --ca over wss: ping answered")
            r = run([RTCAT, "-c", wss, "--ca", other, "-x", '{"type":"ping"}', "-w", "1"])
            check(r.returncode == 1 and "certificate verify failed" in r.stderr,
                  "rtcat with a wrong CA: exit 1, " + r.stderr.strip())
            r = run([RTCAT, "-c", wss, "-x", '{"type":"ping"}', "-w", "1"])
            check(r.returncode == 1 and "certificate verify failed" in r.stderr,
                  "rtcat without --ca: the system CAs do not know ours")
            r = run([RTCAT, "-c", wss, "-n", "-x", '{"type":"ping","id":8}', "-w", "1"])
            check(r.returncode == 0 and any(m.get("id") == 8 for m in lines_json(r.stdout)),
                  "rtcat -n: no certificate check")
            other_name, other_port = start_rtd(RTD, "--tls-cert", os.path.join(d, "elsewhere.pem"),
                                               "--tls-key", key)
            try:
                r = run([RTCAT, "-c", "wss://localhost:%d/ws" % other_port, "--ca", ca, "-x",
                         '{"type":"ping"}', "-w", "1"])
                check(r.returncode == 1 and "certificate verify failed" in r.stderr,
                      "rtcat: a certificate for another host name is refused")
            finally:
                other_name.terminate()
                other_name.wait(timeout=10)

            # rtpush::client (rtcat --reconnect) subscribes over wss; rtctl publishes over https.
            cat = subprocess.Popen([RTCAT, "-c", wss, "--ca", ca, "--reconnect", "--subscribe",
                                    "kpi:r", "-w", "3"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.5)
            for i in range(3):
                r = run([RTCTL, "--server", https, "--ca", ca, "broadcast", "kpi", "--org", "r",
                         "n=%d" % i])
                check(r.returncode == 0, "rtctl broadcast over https (%d)" % i)
            out, err = cat.communicate(timeout=20)
            ups = [m for m in lines_json(out) if m.get("type") in ("initial", "update")]
            check([m["data"]["n"] for m in ups] == [0, 1, 2],
                  "rtpush::client (rtcat --reconnect) over wss received the broadcasts: %s"
                  % [m.get("data") for m in ups])
            check("# subscribed kpi:org:r" in err, "rtcat --reconnect: subscribed over wss")

            r = run(["curl", "-sS", "-m", "5", "--cacert", ca, https + "/api/health"])
            check(r.returncode == 0, "the server still serves after everything above")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            check(proc.returncode == 0, "rtd stops cleanly")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("FAILED: %d" % len(failures) if failures else "all passed")
    sys.exit(1 if failures else 0)


main()
