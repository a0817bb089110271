"""previous.py SOCK STREAM GROUP FROM TO — the claim loop quantum-watchdog used before: one
script of 1 000 entries per call, eight calls a round trip, until FROM holds nothing.
Prints "moved elapsed_ms"."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from resp import Redis  # noqa: E402

CLAIM = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[4]), ARGV[2])
if #p == 0 then return {0, 0} end
local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0}
for _, e in ipairs(p) do args[#args + 1] = e[1] end
args[#args + 1] = 'JUSTID'
local claimed = redis.call(unpack(args))
return {#claimed, #p}
"""
sock, stream, group, frm, to = sys.argv[1:6]
r = Redis(sock, "previous-approach")
sha = r.call("SCRIPT", "LOAD", CLAIM).decode()
moved, t = 0, time.perf_counter()
while True:
    r.send(b"".join(Redis.pack("EVALSHA", sha, 1, stream, group, frm, to, 1000) for _ in range(8)))
    replies = [r.reply() for _ in range(8)]
    moved += sum(x[0] for x in replies)
    if any(x[1] == 0 for x in replies):
        break
print(moved, int((time.perf_counter() - t) * 1000))
