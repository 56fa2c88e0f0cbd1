"""Shared pieces of the Python end-to-end tests: checks that print ok/FAIL lines, and rtd
started on a free loopback port (read from its JSON "listening" log line)."""
import json
import subprocess
import threading

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def start_rtd(rtd, *args, port=0):
    """Starts rtd with `args`; returns (process, port). Its log keeps being drained so that a
    chatty rtd never blocks on a full pipe."""
    proc = subprocess.Popen([rtd, "--host", "127.0.0.1", "--port", str(port), *args],
                            stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "listening":
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, ev["port"]
    raise RuntimeError("rtd did not start")
