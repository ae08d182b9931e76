//! The publish script: one round trip, atomic, so every node sees one
//! order per room.
//!
//! KEYS: seq, log, epoch, and the dedupe key of an acknowledged publish
//! (absent for a plain one). ARGV: the channel, the message (JSON), its
//! `ts`, the log's length cap, an epoch for a room that has none, the
//! dedupe lifetime (s), the oldest `ts` kept (0: no age limit) and the
//! log's lifetime without publishes (ms, 0: none).
//!
//! It answers `{stored, offset, epoch}`: `stored` 0 is a retry of a known
//! id, answered with the first one's offset and not published again.

use redis::Script;

pub(crate) const PUBLISH: &str = r#"
if #KEYS == 4 then
  local known = redis.call('GET', KEYS[4])
  if known then
    return {0, tonumber(known), redis.call('GET', KEYS[3]) or ''}
  end
end
redis.call('SET', KEYS[3], ARGV[5], 'NX')
local epoch = redis.call('GET', KEYS[3])
local offset = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '0-' .. offset, 'ts', ARGV[3], 'm', ARGV[2])
local min_ts = tonumber(ARGV[7])
if min_ts > 0 then
  -- Age retention, a bounded step per publish: drop the oldest entries
  -- older than min_ts among the first 8.
  local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 8)
  local first_kept = nil
  for _, entry in ipairs(oldest) do
    if tonumber(entry[2][2]) >= min_ts then
      first_kept = entry[1]
      break
    end
  end
  if first_kept == nil then
    local last = oldest[#oldest][1]
    first_kept = '0-' .. (tonumber(string.sub(last, 3)) + 1)
  end
  redis.call('XTRIM', KEYS[2], 'MINID', first_kept)
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
end
if #KEYS == 4 then
  redis.call('SET', KEYS[4], offset, 'EX', ARGV[6])
end
redis.call('PUBLISH', ARGV[1], 'm ' .. offset .. ' ' .. epoch .. ' ' .. ARGV[2])
return {1, offset, epoch}
"#;

/// The publish script (called by its SHA1; each pipeline loads it first).
pub(crate) fn publish() -> Script {
    Script::new(PUBLISH)
}

/// Drop a room's presence entries that expired (KEYS: the presence set;
/// ARGV: now in ms, the room's channel, `1` to announce them). Each expired
/// entry is announced once, by the node whose script removed it, as
/// `l <entry>` on the channel (a `presence.leave`).
pub(crate) const EXPIRE_PRESENCE: &str = r#"
local gone = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE')
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
  if ARGV[3] == '1' then
    for _, entry in ipairs(gone) do
      redis.call('PUBLISH', ARGV[2], 'l ' .. entry)
    end
  end
end
return #gone
"#;

/// The presence expiry script.
pub(crate) fn expire_presence() -> Script {
    Script::new(EXPIRE_PRESENCE)
}
