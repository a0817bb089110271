"""slowlog.py SOCK CLIENT — the longest SLOWLOG entry of CLIENT (µs), and how many took 5 ms
or more. Prints "longest_us count_5ms entries"."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from resp import Redis  # noqa: E402

sock, client = sys.argv[1:3]
r = Redis(sock)
entries = [e for e in r.call("SLOWLOG", "GET", "-1") if len(e) > 5 and e[5] == client.encode()]
longest = max((e[2] for e in entries), default=0)
print(longest, sum(1 for e in entries if e[2] >= 5000), len(entries))
