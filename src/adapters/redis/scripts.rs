//! The Lua scripts of the agent's few writes. Each is atomic: a consumer's entries are never
//! taken by a race, a consumer holding entries is never deleted, a copy is made before its
//! original is acknowledged. Each is bounded: it works on one chunk the caller sizes.

/// Moves one entry to the dead-letter stream KEYS[2] if (checked atomically) it is still
/// pending in group ARGV[1] with at least ARGV[3] deliveries, and — unless ARGV[4] is empty —
/// held by the consumer ARGV[4]: XADD a copy with its original ID, group, consumer, delivery
/// count and the field pairs ARGV[5..] (and `ghost 1` if the entry left the stream), then XACK
/// the original. 1 moved, 0 gone, -1 not due.
pub const DEAD_LETTER_LUA: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 then return 0 end
local e = p[1]
if ARGV[4] ~= '' and e[2] ~= ARGV[4] then return 0 end
if tonumber(e[4]) < tonumber(ARGV[3]) then return -1 end
local f = {'original-id', ARGV[2], 'group', ARGV[1], 'consumer', e[2], 'deliveries', tostring(e[4])}
for i = 5, #ARGV do f[#f + 1] = ARGV[i] end
local r = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #r == 1 and r[1][2] then
  for _, v in ipairs(r[1][2]) do f[#f + 1] = v end
else
  f[#f + 1] = 'ghost'
  f[#f + 1] = '1'
end
redis.call('XADD', KEYS[2], '*', unpack(f))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
"#;

/// Field that `requeue` adds to the copy: the ID of the original entry.
pub const REQUEUED_FROM_FIELD: &str = "quantum-watchdog-requeued-from";

/// Claims up to ARGV[4] of one consumer's pending entries to another, atomically: only the
/// entries that consumer holds at this instant are taken. Returns `{claimed, seen}`: on
/// Redis 7.0+ XCLAIM drops entries no longer in the stream from the list instead of claiming
/// them, so `seen - claimed` were ghosts.
///
/// A claim resets the recipient's idle time as a read would; so that nobody takes it for the
/// recipient's progress, it leaves a trace in the hash KEYS[#KEYS] (the group's claims key):
/// field ARGV[3] = `<now> <active>`, the server's time and when the recipient last really read
/// (ARGV[5], server ms, as the claimer's look found it; at most now; empty — unknown — now:
/// an old trace is never taken for it). The emptied
/// consumer's field goes. The trace is best effort (`pcall`): a key of another type there, or
/// a user without the rights, never stops a claim.
pub const CLAIM_LUA: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[4]), ARGV[2])
if #p == 0 then return {0, 0} end
local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0}
for _, e in ipairs(p) do args[#args + 1] = e[1] end
args[#args + 1] = 'JUSTID'
local claimed = redis.call(unpack(args))
local t = redis.pcall('TIME')
if #claimed > 0 and t[1] then
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local trace = KEYS[#KEYS]
  local active = tonumber(ARGV[5]) or now
  if active > now then active = now end
  redis.pcall('HSET', trace, ARGV[3], string.format('%d %d', now, active))
  redis.pcall('HDEL', trace, ARGV[2])
  redis.pcall('PEXPIRE', trace, 86400000)
end
return {#claimed, #p}
"#;

/// The most claim traces a group may hold: one per live recipient.
pub const TRACES_MAX: u64 = 1000;

/// Copies up to ARGV[3] of one consumer's pending entries to the stream's end (with the
/// original ID in a field) and acknowledges each original only after its copy was added. An
/// entry no longer in the stream (a ghost: deleted or trimmed while pending) has no data to
/// lose: it is acknowledged so it leaves the list. Returns `{moved, seen}`; `seen - moved`
/// were ghosts.
pub const REQUEUE_LUA: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[3]), ARGV[2])
local moved = 0
for _, e in ipairs(p) do
  local id = e[1]
  local r = redis.call('XRANGE', KEYS[1], id, id)
  if #r == 1 and r[1][2] then
    local f = r[1][2]
    f[#f + 1] = ARGV[4]
    f[#f + 1] = id
    redis.call('XADD', KEYS[1], '*', unpack(f))
    moved = moved + 1
  end
  redis.call('XACK', KEYS[1], ARGV[1], id)
end
return {moved, #p}
"#;

/// Deletes a consumer only if it holds no pending entry (checked by one `XPENDING` of its own
/// list: O(1) whatever the group's size), and its claim trace in KEYS[#KEYS] with it. Returns
/// the DELCONSUMER reply (always 0), or -1 gone, -2 holds entries, -3 not idle enough.
///
/// A zombie must also still be idle ARGV[3] ms. That is re-checked only in a group of at most
/// ARGV[4] consumers, since listing them costs time in proportion to their number; in a
/// larger group the agent's own look (moments before) stands. Deleting a consumer that holds
/// nothing loses nothing either way: one blocked in `XREADGROUP` is created again when an
/// entry reaches it (observed on Redis 7.0 and Valkey 8.1).
pub const DELETE_LUA: &str = r#"
local function del()
  local n = redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
  redis.pcall('HDEL', KEYS[#KEYS], ARGV[2])
  return n
end
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then return -2 end
local min_idle = tonumber(ARGV[3])
local count = nil
if min_idle > 0 then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local name, n
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'consumers' then n = g[i + 1] end
    end
    if name == ARGV[1] then count = n end
  end
  if count == nil then return -1 end
end
if min_idle == 0 or count > tonumber(ARGV[4]) then
  return del()
end
local found = false
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1] elseif c[i] == 'idle' then idle = c[i + 1] end
  end
  if name == ARGV[2] then
    found = true
    if idle < min_idle then return -3 end
  end
end
if not found then return -1 end
return del()
"#;

/// The largest group in which [`DELETE_LUA`] re-checks a zombie's idle time: listing the
/// consumers inside a script costs 1–2 µs each on the server (1 000 took 1–2 ms on Redis 7.0).
pub const DELETE_RECHECK_MAX: u64 = 100;

/// Does nothing. A script may write, so a server that holds writes back (`CLIENT PAUSE WRITE`,
/// the pause of a `FAILOVER`) holds it back too: answered, the server serves writes. KEYS[1]
/// only routes it (to the node of that stream on a cluster).
pub const PROBE_LUA: &str = "return 1";

/// Publishes this host's heartbeat and reads every host's, in one call. KEYS: the hosts set,
/// this host's heartbeat, the meta hash (per host `<instance> <as_of> <changed> <expires>
/// <digest>`). Times are the server's: no host's clock counts.
///
/// Unless ARGV[2] is empty (a reader that is not the agent): the heartbeat ARGV[2] is SET for
/// ARGV[3] ms — or, when ARGV[2] is `=` (unchanged since this agent's last write, whose digest
/// ARGV[9] the meta still holds, written by this instance), only its time to live renewed;
/// otherwise nothing is written and `resend` asks for the whole heartbeat next time. Its meta
/// is written (ARGV[7] = `<instance> <as_of>`), host ARGV[1] scored in the hosts set, hosts
/// silent ARGV[4] ms forgotten. Then for each host (the 1000 that beat last, none scored ahead
/// of the server's clock): its last beat, its meta, whether its heartbeat is there, and the
/// heartbeat itself only if it changed at or after ARGV[8] (the reader's last read; 0: always)
/// and is at most ARGV[6] bytes ('' otherwise). Returns `{now_ms, before, resend, host,
/// last_ms, meta, present, heartbeat, …}`, `before` being the instance that wrote under this
/// host's name before this call. A key of another type is the script's error (the caller says
/// so loudly).
pub const FLEET_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max = tonumber(ARGV[6])
local function beat(key)
  local n = redis.pcall('STRLEN', key)
  if type(n) ~= 'number' or n == 0 or n > max then return '' end
  return redis.call('GET', key)
end
local function fields(m)
  local f = {}
  for w in string.gmatch(m or '', '%S+') do f[#f + 1] = w end
  return f
end
local mine = fields(redis.call('HGET', KEYS[3], ARGV[1]))
local before = mine[1] or ''
local resend = 0
if ARGV[2] ~= '' then
  local ttl = tonumber(ARGV[3])
  local changed = now
  if ARGV[2] == '=' then
    if mine[5] == ARGV[9] and before == fields(ARGV[7])[1] and redis.call('PEXPIRE', KEYS[2], ttl) == 1 then
      changed = tonumber(mine[3]) or now
    else
      resend = 1
    end
  else
    redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
  end
  if resend == 0 then
    redis.call('HSET', KEYS[3], ARGV[1], ARGV[7] .. ' ' .. changed .. ' ' .. (now + ttl) .. ' ' .. ARGV[9])
  end
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[4]), 'LIMIT', 0, 100)) do
    redis.call('HDEL', KEYS[3], h)
    redis.call('ZREM', KEYS[1], h)
  end
end
local since = tonumber(ARGV[8])
local out = {now, before, resend}
local hosts = redis.call('ZREVRANGEBYSCORE', KEYS[1], now + 1000, '-inf', 'WITHSCORES', 'LIMIT', 0, 1000)
if #hosts == 0 then return out end
local names = {}
for i = 1, #hosts, 2 do names[#names + 1] = hosts[i] end
local metas = redis.call('HMGET', KEYS[3], unpack(names))
for i, h in ipairs(names) do
  local m = metas[i] or ''
  local f = fields(m)
  local present
  if f[4] then present = tonumber(f[4]) > now and 1 or 0 else present = redis.call('EXISTS', ARGV[5] .. h) end
  local b = ''
  if present == 1 and (f[3] == nil or tonumber(f[3]) >= since) then b = beat(ARGV[5] .. h) end
  out[#out + 1] = h
  out[#out + 1] = math.floor(tonumber(hosts[2 * i]))
  out[#out + 1] = m
  out[#out + 1] = present
  out[#out + 1] = b
end
return out
"#;

/// The longest heartbeat written or read (bytes): 1 000 bindings of 11 consumers make ~450
/// KiB; a longer one is not an agent's, and copying it would hold the server.
pub const HEARTBEAT_MAX: u64 = 1024 * 1024;

/// Takes (or keeps) a group's recovery lease KEYS[1] for host ARGV[1], ARGV[2] ms: free, it
/// gets a new fencing token from the counter KEYS[2]; held by ARGV[1], it is extended. Returns
/// the lease's value `<host>/<token>` — another host's if it holds it. A lease always
/// expires: one found without a time to live (another client's SET, no agent's) is taken over
/// as a free one.
pub const LEASE_LUA: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur and redis.call('PTTL', KEYS[1]) >= 0 then
  if string.match(cur, '^(.*)/%d+$') == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  return cur
end
local v = ARGV[1] .. '/' .. redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
return v
"#;

/// Put before a script that acts on another host's consumers: it runs only while the lease
/// KEYS[2] still has the value ARGV[1] (the fencing token this agent took), and then extends
/// it by ARGV[2] ms; both are removed from ARGV. An agent that stalled past its lease is
/// refused (`FENCED`).
pub const FENCE_LUA: &str = r#"
local fence = table.remove(ARGV, 1)
local ttl = table.remove(ARGV, 1)
if redis.call('GET', KEYS[2]) ~= fence then
  return redis.error_reply('FENCED the recovery lease is no longer ' .. fence)
end
redis.call('PEXPIRE', KEYS[2], ttl)
"#;

/// Removes this host from the fleet (a clean stop): its heartbeat KEYS[2] and its name ARGV[1]
/// in KEYS[1]. Others then treat its consumers as of a host without an agent.
pub const LEAVE_LUA: &str = r#"
redis.call('DEL', KEYS[2])
return redis.call('ZREM', KEYS[1], ARGV[1])
"#;

/// The scripts, loaded once per client.
pub struct Scripts {
    /// [`CLAIM_LUA`].
    pub claim: redis::Script,
    /// [`REQUEUE_LUA`].
    pub requeue: redis::Script,
    /// [`DELETE_LUA`].
    pub delete: redis::Script,
    /// [`DEAD_LETTER_LUA`].
    pub dead_letter: redis::Script,
    /// [`PROBE_LUA`].
    pub probe: redis::Script,
    /// [`LEASE_LUA`].
    pub lease: redis::Script,
    /// [`FENCE_LUA`] before [`CLAIM_LUA`].
    pub claim_fenced: redis::Script,
    /// [`FENCE_LUA`] before [`REQUEUE_LUA`].
    pub requeue_fenced: redis::Script,
    /// [`FENCE_LUA`] before [`DELETE_LUA`].
    pub delete_fenced: redis::Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            claim: redis::Script::new(CLAIM_LUA),
            requeue: redis::Script::new(REQUEUE_LUA),
            delete: redis::Script::new(DELETE_LUA),
            dead_letter: redis::Script::new(DEAD_LETTER_LUA),
            probe: redis::Script::new(PROBE_LUA),
            lease: redis::Script::new(LEASE_LUA),
            claim_fenced: redis::Script::new(&format!("{FENCE_LUA}{CLAIM_LUA}")),
            requeue_fenced: redis::Script::new(&format!("{FENCE_LUA}{REQUEUE_LUA}")),
            delete_fenced: redis::Script::new(&format!("{FENCE_LUA}{DELETE_LUA}")),
        }
    }
}
