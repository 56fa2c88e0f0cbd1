#!/usr/bin/python3
"""GET /metrics of a running rtd, checked by Prometheus' own linter (`promtool check metrics`).

Usage: promtool_metrics.py PATH_TO_RTD. Exit 77 (skipped) when promtool is not installed
(Debian package `prometheus`).
"""
import json
import shutil
import subprocess
import sys
import time
import urllib.request

RTD = sys.argv[1]
promtool = shutil.which("promtool")
if not promtool:
    print("SKIP: promtool not found (apt-get install prometheus provides it)")
    sys.exit(77)

proc = subprocess.Popen([RTD, "--host", "127.0.0.1", "--port", "0", "--demo", "--demo-interval", "200"],
                        stdout=subprocess.PIPE, text=True)
try:
    port = None
    for line in proc.stdout:
        ev = json.loads(line)
        if ev.get("event") == "listening":
            port = ev["port"]
            break
    if port is None:
        raise RuntimeError("rtd did not start")
    # A subscriber, so that messages are sent and the latency histogram has samples.
    sub = subprocess.Popen(["/usr/bin/python3", "-c", f"""
import asyncio, json, websockets
async def main():
    async with websockets.connect('ws://127.0.0.1:{port}/ws') as ws:
        await ws.send(json.dumps({{'type': 'subscribe', 'channel': 'kpi', 'scope': {{'org': 'acme'}}}}))
        for _ in range(60):
            await ws.recv()
asyncio.run(main())
"""])
    sub.wait(timeout=30)
    time.sleep(0.2)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        ctype = r.headers.get("Content-Type", "")
        text = r.read().decode()
    print(text)
    ok = ctype.startswith("text/plain; version=0.0.4")
    print(("ok   " if ok else "FAIL ") + "Content-Type " + ctype)
    res = subprocess.run([promtool, "check", "metrics"], input=text, text=True, capture_output=True, timeout=30)
    print(res.stdout + res.stderr)
    print(("ok   " if res.returncode == 0 else "FAIL ") + f"promtool check metrics exit {res.returncode}")
    ok = ok and res.returncode == 0 and sub.returncode == 0
    sys.exit(0 if ok else 1)
finally:
    proc.terminate()
    proc.wait(timeout=15)
