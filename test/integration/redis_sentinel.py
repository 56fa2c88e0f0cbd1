#!/usr/bin/python3
"""rtd on the Redis engine behind Sentinel, end to end with real processes on free loopback
ports, started and stopped here: a master, a replica, three sentinels, two rtd nodes.

- bad settings are refused at start with a message (sentinels without a master name, ...);
- the nodes find the master through the sentinels (one with flags, one with the
  redis+sentinel:// URL); /api/health names the topology and the master;
- the master is killed (SIGKILL) while 1000 publications/s go to both nodes: a subscriber on
  each node receives every publication answered 2xx exactly once, in order (seqs strictly
  increasing), with the seq it was answered with; while there is no master publishes answer 503
  and /api/health says redis_up false; the nodes follow +switch-master to the promoted replica.
  The gap (kill to the first 2xx after it) is printed.

Usage: redis_sentinel.py PATH_TO_RTD
"""
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import websockets

from rtdtest import check, failures, start_rtd
from redis_cluster import REDIS, Sub, free_port, http, start_redis, up, wait_for

RTD = sys.argv[1] if __name__ == "__main__" else None  # imported: bench/cross_node
MASTER = "mymaster"
RATE = 1000        # publications per second, both publishers together
SECONDS = 8        # of publishing
KILL_AFTER = 2.0   # seconds into publishing


def redis_cmd(port, *args, timeout=2):
    """One command over RESP, its reply decoded roughly (enough for the checks here)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        out = f"*{len(args)}\r\n" + "".join(f"${len(str(a))}\r\n{a}\r\n" for a in args)
        s.sendall(out.encode())
        time.sleep(0.05)
        return s.recv(65536).decode(errors="replace")


def start_sentinel(port, master_port, workdir):
    conf = os.path.join(workdir, f"sentinel-{port}.conf")
    with open(conf, "w") as f:
        f.write(f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 10000\n"
                f"sentinel parallel-syncs {MASTER} 1\n")
    # Debian's redis-sentinel is redis-server in sentinel mode; either starts the same code.
    exe = shutil.which("redis-sentinel")
    cmd = [exe, conf] if exe else [REDIS, conf, "--sentinel"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for(lambda: "PONG" in redis_cmd(port, "PING")):
        proc.kill()
        raise RuntimeError("redis-sentinel did not start")
    return proc


def sentinels_ready(sports):
    """Every sentinel knows the replica and the two other sentinels (needed for a failover)."""
    for p in sports:
        replicas = redis_cmd(p, "SENTINEL", "REPLICAS", MASTER)
        others = redis_cmd(p, "SENTINEL", "SENTINELS", MASTER)
        if "flags" not in replicas or "s_down" in replicas or others.count("runid") < 2:
            return False
    return True


def refused_settings(sports):
    s = ",".join(f"127.0.0.1:{p}" for p in sports)
    for what, extra, names in [
        ("--redis-sentinels without --redis-master-name", ["--redis-sentinels", s],
         "--redis-master-name"),
        ("--redis-master-name without sentinels", ["--redis-master-name", MASTER],
         "--redis-sentinels"),
        ("a sentinel that is not host:port", ["--redis-sentinels", "127.0.0.1:x",
                                              "--redis-master-name", MASTER], "127.0.0.1:x"),
        ("a redis+sentinel:// URL without a master name",
         ["--redis-url", f"redis+sentinel://{s}"], "MASTER"),
    ]:
        r = subprocess.run([RTD, "--port", "0", "--engine", "redis", *extra],
                           capture_output=True, text=True, timeout=10)
        said = (r.stdout + r.stderr)[-300:]
        check(r.returncode == 2 and names in said, f"{what}: refused at start ({r.returncode}: "
                                                   f"{said.strip()!r})")


class Publisher:
    """Publishes {"p": name, "v": i} over one WebSocket at a steady rate, each with an id, in
    turn on `channels`, and records each answer: the seq of a `published`, or the code of an
    `error`."""

    def __init__(self, port, name, org, channels=("kpi",)):
        self.port, self.name, self.org, self.channels = port, name, org, channels
        self.sent, self.acked, self.refused, self.ack_time = 0, {}, {}, {}

    async def run(self, rate, seconds):
        async with websockets.connect(f"ws://127.0.0.1:{self.port}/ws", max_size=None) as ws:
            await ws.recv()
            total = int(rate * seconds)

            async def answers():
                while len(self.acked) + len(self.refused) < total:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    if m.get("type") == "published":
                        self.acked[m["id"]] = m["seq"]
                        self.ack_time[m["id"]] = time.time()
                    elif m.get("type") == "error" and "id" in m:
                        self.refused[m["id"]] = m.get("code")
            reader = asyncio.create_task(answers())
            t0 = time.time()
            for i in range(1, total + 1):
                await ws.send(json.dumps({"type": "publish", "id": i,
                                          "channel": self.channels[i % len(self.channels)],
                                          "scope": {"org": self.org},
                                          "data": {"p": self.name, "v": i}}))
                self.sent = i
                if i % 10 == 0:
                    ahead = t0 + i / rate - time.time()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            await asyncio.wait_for(reader, 30)


class HealthWatch(threading.Thread):
    """Samples a node's /api/health every 50 ms; while it says redis_up false, asks
    /api/v1/health (the readiness check) and tries a REST publish, which must answer 503."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.down_seen, self.down_publish = port, threading.Event(), 0, []

    def run(self):
        while not self.stop.is_set():
            try:
                st, body = http(self.port, "/api/health")
                if body.get("redis_up") is False:
                    self.down_seen += 1
                    if len(self.down_publish) < 3:
                        st1, deep = http(self.port, "/api/v1/health")
                        self.down_publish.append((st, st1, deep.get("failing"), http(
                            self.port, "/api/broadcast", {"channel": "notes", "data": {"x": 1}})[0]))
            except Exception:
                pass
            time.sleep(0.05)


async def failover_under_load(a, b, master_proc, t_kill):
    subs = [await Sub(p, "fo").open() for p in (a, b)]
    pubs = [Publisher(a, "A", "fo"), Publisher(b, "B", "fo")]

    async def killer():
        await asyncio.sleep(KILL_AFTER)
        t_kill.append(time.time())
        master_proc.send_signal(signal.SIGKILL)
    await asyncio.gather(*(p.run(RATE / 2, SECONDS) for p in pubs), killer())
    acked = {(p.name, i): s for p in pubs for i, s in p.acked.items()}
    for s in subs:
        await s.drain(until_count=len(acked), timeout=20)
        await s.drain()
    return subs, pubs, acked


def main():
    if not REDIS:
        print("skip: redis-server not installed (scripts/deps)")
        return 77
    workdir = tempfile.mkdtemp(prefix="rtpush-sentinel-")
    procs = []
    try:
        mport, rport = free_port(), free_port()
        master = start_redis(mport, workdir)
        replica = start_redis(rport, workdir, "--replicaof", "127.0.0.1", str(mport),
                              "--dbfilename", "replica.rdb")
        procs += [master, replica]
        sports = [free_port() for _ in range(3)]
        procs += [start_sentinel(p, mport, workdir) for p in sports]
        check(wait_for(lambda: sentinels_ready(sports), 30),
              "three sentinels watch the master and know its replica and each other")
        refused_settings(sports)

        sentinels = ",".join(f"127.0.0.1:{p}" for p in sports)
        common = ["--engine", "redis", "--redis-prefix", "st", "--threads", "1",
                  "--history-size", "20000", "--allow-publish", "--max-messages-per-second", "0"]
        pa, a = start_rtd(RTD, *common, "--node-id", "sent-a", "--redis-sentinels", sentinels,
                          "--redis-master-name", MASTER)
        pb, b = start_rtd(RTD, *common, "--node-id", "sent-b", "--redis-url",
                          f"redis+sentinel://{sentinels}/{MASTER}/0")
        procs += [pa, pb]
        check(wait_for(lambda: up(a) and up(b), 15),
              "both nodes find the master through the sentinels (flags and URL form)")
        check(wait_for(lambda: all(http(p, "/api/health")[1].get("redis_replicas_online") == 1
                                   for p in (a, b)), 20),
              "the nodes see the replica online (publications wait for it: WAIT 1)")
        health = http(a, "/api/health")[1]
        check(health.get("redis_topology") == "sentinel" and
              health.get("redis") == f"127.0.0.1:{mport}",
              f"/api/health names the topology and the master ({health.get('redis_topology')}, "
              f"{health.get('redis')})")

        watch = HealthWatch(a)
        watch.start()
        t_kill = []
        subs, pubs, acked = asyncio.run(failover_under_load(a, b, master, t_kill))
        watch.stop.set()
        watch.join(5)
        total = sum(p.sent for p in pubs)
        after = [t for p in pubs for i, t in p.ack_time.items() if t > t_kill[0]]
        before = [t for p in pubs for i, t in p.ack_time.items() if t <= t_kill[0]]
        check(len(before) > RATE * KILL_AFTER * 0.8,
              f"before the kill, publications are answered 2xx ({len(before)})")
        before = before or [t_kill[0]]
        times = sorted(t for p in pubs for t in p.ack_time.values())
        gap = max((y - x for x, y in zip(times, times[1:])), default=float("inf"))
        refused = sum(len(p.refused) for p in pubs)
        print(f"     sent {total} at {RATE}/s, answered 2xx {len(acked)}, refused {refused}; "
              f"master killed at +{KILL_AFTER} s; longest stretch without a 2xx: {gap:.2f} s; "
              f"last 2xx before it: -{t_kill[0] - max(before):.3f} s")
        check(len(acked) + refused == total, f"every publication answered ({len(acked)} + "
                                             f"{refused} of {total})")
        check(after and len(acked) > total * 0.5,
              f"publishing resumes on the promoted replica ({len(after)} answered 2xx after)")
        for name, s in zip("AB", subs):
            got = [((u["data"]["p"], u["data"]["v"]), u["seq"]) for u in s.updates]
            seqs = [q for _, q in got]
            keys = [k for k, _ in got]
            missing = [k for k in acked if k not in set(keys)]
            wrong_seq = [k for k, q in got if k in acked and acked[k] != q]
            check(not missing, f"subscriber on {name}: every publication answered 2xx "
                               f"({len(acked)}) received (missing {len(missing)}: {missing[:5]})")
            check(len(set(keys)) == len(keys),
                  f"subscriber on {name}: each exactly once ({len(keys) - len(set(keys))} twice)")
            check(all(x < y for x, y in zip(seqs, seqs[1:])),
                  f"subscriber on {name}: in order (seqs strictly increasing)")
            check(not wrong_seq, f"subscriber on {name}: with the seq it was answered with "
                                 f"({wrong_seq[:5]})")
            for p in "AB":
                vs = [k[1] for k in keys if k[0] == p]
                check(vs == sorted(vs), f"subscriber on {name}: publisher {p}'s in its order")
        check(watch.down_seen > 0, f"/api/health said redis_up false while there was no master "
                                   f"({watch.down_seen} samples)")
        check(watch.down_publish and all(st == 200 and st1 == 503 and "engine:redis" in failing
                                         and pub == 503
                                         for st, st1, failing, pub in watch.down_publish),
              f"meanwhile /api/health 200 (live), /api/v1/health 503 naming engine:redis, a "
              f"publish 503 ({watch.down_publish})")
        health = http(a, "/api/health")[1]
        check(health.get("redis_up") is True and health.get("redis") == f"127.0.0.1:{rport}",
              f"the nodes follow the promoted replica ({health.get('redis')})")
        switches = [http(p, "/api/health")[1].get("redis_master_switches") for p in (a, b)]
        check(all(n and n >= 1 for n in switches),
              f"both nodes followed the sentinels' +switch-master ({switches})")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)
    print("FAILED: " + ", ".join(failures) if failures else "all ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
