#!/usr/bin/python3
"""rtd on a Redis Cluster, end to end with real processes on free loopback ports, started and
stopped here: three masters with a replica each (redis-server --cluster-enabled yes, joined
with redis-cli --cluster create), two rtd nodes.

- bad settings are refused at start (a Cluster with Sentinels, a database other than 0);
- the nodes read the slot map (one with --redis-cluster, one with redis+cluster://);
  channels chosen to spread over the three masters, each on its master's slot (checked in
  Redis: the channel's keys and its shard channel live there);
- a master is killed (SIGKILL) while 1000 publications/s go to both nodes over six channels:
  a subscriber on each node receives every publication answered 2xx exactly once, in order per
  topic, with its seq; the cluster promotes the replica and publishing resumes (gap printed);
- a channel's slot is migrated to another master (SETSLOT IMPORTING/MIGRATING, MIGRATE,
  SETSLOT NODE) while publishing: the same, and the channel's keys are on the new master.

Usage: redis_shards.py PATH_TO_RTD
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
import time

from rtdtest import check, failures, start_rtd
from redis_cluster import REDIS, free_port, http, up, wait_for
from redis_sentinel import Publisher, redis_cmd

import websockets

RTD = sys.argv[1] if __name__ == "__main__" else None  # imported: bench/cross_node
PREFIX = "sh"
RATE = 1000


def cluster_port():
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        p = free_port()
        if p + 10000 > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 10000))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def start_node(port, workdir):
    d = os.path.join(workdir, str(port))
    os.makedirs(d)
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", d, "--cluster-enabled", "yes",
                             "--cluster-config-file", "nodes.conf",
                             "--cluster-node-timeout", "1000",
                             "--repl-diskless-sync-delay", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for(lambda: "PONG" in redis_cmd(port, "PING")):
        proc.kill()
        raise RuntimeError("redis-server did not start")
    return proc


def slots_of(port):
    """{slot range start: master port} from CLUSTER SLOTS, via redis-cli for easy parsing."""
    out = subprocess.run(["redis-cli", "-p", str(port), "--json", "cluster", "slots"],
                         capture_output=True, text=True, timeout=10).stdout
    return json.loads(out)


def owner(port, slot):
    for r in slots_of(port):
        if r[0] <= slot <= r[1]:
            return r[2][1]
    return None


def keyslot(port, key):
    return int(redis_cmd(port, "CLUSTER", "KEYSLOT", key).strip().lstrip(":"))


def cluster_ok(ports):
    for p in ports:
        info = redis_cmd(p, "CLUSTER", "INFO")
        if "cluster_state:ok" not in info:
            return False
    return all(len(r) >= 4 for r in slots_of(ports[0]))  # each range has its replica


class MultiSub:
    """A WebSocket subscriber of several channels (org "fo") recording every update."""

    def __init__(self, port, channels):
        self.port, self.channels, self.updates = port, channels, []

    async def open(self):
        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/ws", max_size=None)
        await self.ws.recv()
        for i, c in enumerate(self.channels):
            await self.ws.send(json.dumps({"type": "subscribe", "channel": c,
                                           "scope": {"org": "fo"}, "id": f"s{i}"}))
        acked = 0
        while acked < len(self.channels):
            m = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            acked += m["type"] == "subscribed"
        return self

    async def drain(self, until_count=None, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if until_count is not None and len(self.updates) >= until_count:
                return
            try:
                m = json.loads(await asyncio.wait_for(self.ws.recv(), 0.3))
            except asyncio.TimeoutError:
                if until_count is None:
                    return
                continue
            if m["type"] == "update":
                self.updates.append(m)


async def publish_under(a, b, channels, seconds, event_at, event):
    """Both nodes publish (RATE/s together) over `channels` for `seconds`; `event` runs
    `event_at` s in. Returns the subscribers, the publishers, and the event's time."""
    subs = [await MultiSub(p, channels).open() for p in (a, b)]
    pubs = [Publisher(a, "A", "fo", channels), Publisher(b, "B", "fo", channels)]
    t_event = []

    async def at():
        await asyncio.sleep(event_at)
        t_event.append(time.time())
        await asyncio.get_running_loop().run_in_executor(None, event)
    await asyncio.gather(*(p.run(RATE / 2, seconds) for p in pubs), at())
    n_acked = sum(len(p.acked) for p in pubs)
    for s in subs:
        await s.drain(until_count=n_acked, timeout=20)
        await s.drain()
    return subs, pubs, t_event[0]


def verify(what, subs, pubs, t_event, channels):
    acked = {(p.name, i): s for p in pubs for i, s in p.acked.items()}
    total = sum(p.sent for p in pubs)
    refused = sum(len(p.refused) for p in pubs)
    after = [t for p in pubs for t in p.ack_time.values() if t > t_event]
    times = sorted(t for p in pubs for t in p.ack_time.values())
    gap = max((y - x for x, y in zip(times, times[1:])), default=float("inf"))
    print(f"     {what}: sent {total} at {RATE}/s, answered 2xx {len(acked)}, refused {refused}; "
          f"longest stretch without a 2xx: {gap:.2f} s")
    for p in pubs:
        hist = {}
        for t in p.ack_time.values():
            k = round(t - t_event, 0)
            hist[k] = hist.get(k, 0) + 1
        print(f"     {p.name}: 2xx per second from the event {sorted(hist.items())}, "
              f"refused codes {sorted(set(p.refused.values()))}")
    check(len(acked) + refused == total, f"{what}: every publication answered")
    check(len(after) >= RATE, f"{what}: publishing goes on ({len(after)} answered 2xx after "
                              f"the event, at least a second's worth)")
    for name, s in zip("AB", subs):
        got = [((u["data"]["p"], u["data"]["v"]), u["seq"], u["channel"]) for u in s.updates]
        keys = [k for k, _, _ in got]
        missing = [k for k in acked if k not in set(keys)]
        check(not missing, f"{what}, subscriber on {name}: every publication answered 2xx "
                           f"received (missing {len(missing)}: {missing[:5]})")
        check(len(set(keys)) == len(keys), f"{what}, subscriber on {name}: each exactly once")
        in_order = all(all(x < y for x, y in zip(q, q[1:]))
                       for q in ([sq for _, sq, c in got if c == ch] for ch in channels))
        check(in_order, f"{what}, subscriber on {name}: in order per topic")
        wrong = [k for k, sq, _ in got if k in acked and acked[k] != sq]
        check(not wrong, f"{what}, subscriber on {name}: with the seq answered ({wrong[:3]})")
    return gap


def migrate_slot(slot, src, dst):
    """Moves one slot from master port src to master port dst, as redis-cli --cluster
    reshard does, with its keys."""
    src_id = redis_cmd(src, "CLUSTER", "MYID").split("\r\n")[1]
    dst_id = redis_cmd(dst, "CLUSTER", "MYID").split("\r\n")[1]
    redis_cmd(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    redis_cmd(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    keys = [k for k in redis_cmd(src, "CLUSTER", "GETKEYSINSLOT", slot, 1000).split("\r\n")
            if k and not k.startswith(("*", "$"))]
    if keys:
        redis_cmd(src, "MIGRATE", "127.0.0.1", dst, "", 0, 5000, "KEYS", *keys, timeout=10)
    redis_cmd(dst, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    redis_cmd(src, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    return keys


def main():
    if not REDIS or not shutil.which("redis-cli"):
        print("skip: redis-server/redis-cli not installed (scripts/deps)")
        return 77
    workdir = tempfile.mkdtemp(prefix="rtpush-shards-")
    procs = {}
    rtds = []
    try:
        ports = [cluster_port() for _ in range(6)]
        for p in ports:
            procs[p] = start_node(p, workdir)
        r = subprocess.run(["redis-cli", "--cluster", "create",
                            *[f"127.0.0.1:{p}" for p in ports], "--cluster-replicas", "1",
                            "--cluster-yes"], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, f"redis-cli --cluster create: 3 masters, 3 replicas "
                                 f"({r.stdout[-200:]!r})")
        check(wait_for(lambda: cluster_ok(ports), 30), "cluster_state:ok, a replica per master")
        masters = sorted({rng[2][1] for rng in slots_of(ports[0])})

        # Channels whose slots spread over the three masters: two on each.
        channels, per = [], {m: 0 for m in masters}
        for i in range(200):
            c = f"c{i}"
            m = owner(ports[0], keyslot(ports[0], "{" + PREFIX + ":" + c + "}"))
            if per[m] < 2:
                per[m] += 1
                channels.append(c)
            if len(channels) == 6:
                break
        check(len(channels) == 6, f"six channels, two on each master ({channels})")

        for what, extra, names in [
            ("a Cluster with Sentinels", ["--redis-cluster", f"127.0.0.1:{ports[0]}",
                                          "--redis-sentinels", "127.0.0.1:1",
                                          "--redis-master-name", "m"], "Sentinels"),
            ("a Cluster with database 3", ["--redis-cluster", f"127.0.0.1:{ports[0]}",
                                           "--redis-url", "redis://x/3"], "database 0"),
            ("a Cluster node that is not host:port", ["--redis-cluster", "127.0.0.1:x"],
             "127.0.0.1:x")]:
            r = subprocess.run([RTD, "--port", "0", "--engine", "redis", *extra],
                               capture_output=True, text=True, timeout=10)
            said = (r.stdout + r.stderr)[-300:]
            check(r.returncode == 2 and names in said,
                  f"{what}: refused at start ({r.returncode}: {said.strip()!r})")

        seeds = ",".join(f"127.0.0.1:{p}" for p in ports[:3])
        common = ["--engine", "redis", "--redis-prefix", PREFIX, "--threads", "1",
                  "--history-size", "20000", "--allow-publish", "--max-messages-per-second", "0"]
        pa, a = start_rtd(RTD, *common, "--node-id", "sh-a", "--redis-cluster", seeds)
        pb, b = start_rtd(RTD, *common, "--node-id", "sh-b", "--redis-url",
                          f"redis+cluster://{seeds}")
        rtds += [pa, pb]
        check(wait_for(lambda: up(a) and up(b), 20), "both nodes read the slot map and connect "
                                                    "to every master (flag and URL form)")
        health = http(a, "/api/health")[1]
        check(health.get("redis_topology") == "cluster" and
              len(health.get("redis", "").split(",")) == 3,
              f"/api/health: topology cluster, three masters ({health.get('redis')})")
        check(wait_for(lambda: all(http(p, "/api/health")[1].get("redis_replicas_online") == 1
                                   for p in (a, b)), 20),
              "the nodes see a replica online on every master (WAIT 1)")

        # Without WAIT (--redis-wait-replicas 0) the script itself SPUBLISHes.
        pc, c = start_rtd(RTD, *common, "--node-id", "sh-c", "--redis-cluster", seeds,
                          "--redis-wait-replicas", "0")
        rtds.append(pc)
        check(wait_for(lambda: up(c), 20), "node C up (no WAIT)")

        async def no_wait():
            sub = await MultiSub(a, channels).open()
            pub = Publisher(c, "C", "fo", channels)
            await pub.run(200, 0.3)
            await sub.drain(until_count=len(pub.acked))
            await sub.drain()
            got = sorted(u["data"]["v"] for u in sub.updates)
            check(len(pub.acked) == 60 and got == sorted(pub.acked),
                  f"published on C by the script's SPUBLISH, received on A ({len(got)} of "
                  f"{len(pub.acked)})")
        asyncio.run(no_wait())
        pc.terminate()
        pc.wait(10)

        # 1. A master killed under load.
        victim = owner(ports[0], keyslot(ports[0], "{" + PREFIX + ":" + channels[0] + "}"))
        subs, pubs, t = asyncio.run(publish_under(
            a, b, channels, 8, 1.5, lambda: procs[victim].send_signal(signal.SIGKILL)))
        gap = verify("master killed", subs, pubs, t, channels)
        alive = [p for p in ports if p != victim]
        new_owner = owner(alive[0], keyslot(alive[0], "{" + PREFIX + ":" + channels[0] + "}"))
        check(new_owner != victim, f"the cluster promoted the replica ({victim} -> {new_owner})")

        # 2. A channel's slot migrated to another master while publishing.
        ch = channels[2]
        slot = keyslot(alive[0], "{" + PREFIX + ":" + ch + "}")
        src = owner(alive[0], slot)
        dst = next(m for m in {rng[2][1] for rng in slots_of(alive[0])} if m != src)
        moved = {}
        subs, pubs, t = asyncio.run(publish_under(
            a, b, channels, 4, 1.5, lambda: moved.setdefault("keys", migrate_slot(slot, src, dst))))
        verify("slot migrated", subs, pubs, t, channels)
        check(owner(alive[0], slot) == dst and moved.get("keys") and
              all(redis_cmd(dst, "EXISTS", k).strip() == ":1" for k in moved["keys"][:5]),
              f"slot {slot} of channel {ch} and its {len(moved.get('keys', []))} keys moved "
              f"from {src} to {dst}")
        stats = [http(p, "/api/health")[1] for p in (a, b)]
        print(f"     redirects {[s.get('redis_redirects') for s in stats]}, reconnects "
              f"{[s.get('redis_reconnects') for s in stats]}; master failover gap {gap:.2f} s")
    finally:
        for p in rtds + list(procs.values()):
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
