"""latency.py SOCK STOPFILE OUT — a trading client beside the agent: XADD, XREADGROUP, XACK on
its own stream, about 1 000 commands a second, each timed; runs until STOPFILE exists, then
writes "count p50_ms p99_ms max_ms" to OUT."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from resp import Redis  # noqa: E402

sock, stop, out = sys.argv[1:4]
r = Redis(sock, "trading-client")
s = "bench:latency"
try:
    r.call("XGROUP", "CREATE", s, "g", "$", "MKSTREAM")
except RuntimeError:
    pass
lat = []
period = 3 / 1000.0  # three commands per round: ~1 000 a second
nxt = time.perf_counter()
while not os.path.exists(stop):
    for cmd in (
        ("XADD", s, "MAXLEN", "~", "10000", "*", "order", "1"),
        ("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", s, ">"),
    ):
        t = time.perf_counter()
        rep = r.call(*cmd)
        lat.append(time.perf_counter() - t)
    if rep:
        eid = rep[0][1][0][0]
        t = time.perf_counter()
        r.call("XACK", s, "g", eid)
        lat.append(time.perf_counter() - t)
    nxt += period
    time.sleep(max(0.0, nxt - time.perf_counter()))
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1000
with open(out, "w") as f:
    f.write(f"{len(lat)} {q(0.5):.3f} {q(0.99):.3f} {lat[-1] * 1000:.3f}\n")
