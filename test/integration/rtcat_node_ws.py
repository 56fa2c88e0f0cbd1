#!/usr/bin/python3
"""rtcat in pipe mode against a Node `ws` echo server (issue 4): rtcat is a generic WebSocket
client, not an rtpush-only one. `ws` is the benchmark peers' npm package (bench/package.json),
installed into bench/node_modules when missing, as bench/run does.
Exit 77 (skipped) only when node or npm is missing or the npm install fails.
Usage: rtcat_node_ws.py PATH_TO_RTCAT
"""
import json
import os
import shutil
import subprocess
import sys

from rtdtest import check, failures

RTCAT = sys.argv[1]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "bench")
HERE = os.path.dirname(os.path.abspath(__file__))

node, npm = shutil.which("node"), shutil.which("npm")
if not node or not npm:
    print("SKIP: node or npm is not installed (scripts/deps installs them)")
    sys.exit(77)
if not os.path.isdir(os.path.join(BENCH, "node_modules", "ws")):
    print("# npm install in bench/ (ws)", flush=True)
    r = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund"], cwd=BENCH,
                       timeout=240)
    if r.returncode != 0 or not os.path.isdir(os.path.join(BENCH, "node_modules", "ws")):
        print("SKIP: npm install of ws failed")
        sys.exit(77)

env = dict(os.environ, NODE_PATH=os.path.join(BENCH, "node_modules"))
server = subprocess.Popen([node, os.path.join(HERE, "ws_echo.js")], stdout=subprocess.PIPE,
                          text=True, env=env)
try:
    line = server.stdout.readline()
    port = json.loads(line)["port"]
    url = f"ws://127.0.0.1:{port}/"

    lines = ["hello", "second line with spaces", '{"type":"ping","id":1}', "ünïcödé ✓"]
    r = subprocess.run([RTCAT, "-c", url, "-w", "1"], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"exits 0 (got {r.returncode}, stderr {r.stderr!r})")
    # JSON lines come back as compact JSON (one line each), the rest as sent
    check(r.stdout.splitlines() == lines, f"every line echoed in order ({r.stdout!r})")

    # -x sends and then waits -w for the replies, with no stdin at all
    r = subprocess.run([RTCAT, "-c", url, "-x", "one", "-x", "two", "-w", "1"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    check(r.returncode == 0 and r.stdout.splitlines() == ["one", "two"],
          f"-x messages echoed ({r.stdout!r}, {r.stderr!r})")

    # stdin that ends at once: rtcat still waits -w for the echo of what it sent
    many = [f"line {i}" for i in range(200)]
    r = subprocess.run([RTCAT, "-c", url, "-w", "2"], input="\n".join(many) + "\n",
                       capture_output=True, text=True, timeout=30)
    check(r.stdout.splitlines() == many, f"200 piped lines, all echoed in order "
          f"({len(r.stdout.splitlines())} lines)")

    # --reconnect (rtpush::client) against a server that is not rtpush: no `connected`
    # message, no heartbeats; echoes still come through
    r = subprocess.run([RTCAT, "-c", url, "--reconnect", "-w", "1"], input="abc\n",
                       capture_output=True, text=True, timeout=30)
    check(r.stdout.splitlines() == ["abc"], f"--reconnect: echoed ({r.stdout!r}, {r.stderr!r})")
finally:
    server.terminate()
    server.wait(10)

if failures:
    print(f"{len(failures)} failed:", *failures, sep="\n  ")
    sys.exit(1)
print("all passed")
