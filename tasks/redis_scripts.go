package tasks

import "github.com/redis/go-redis/v9"

// Every change to a task is one of these Lua scripts, so it is one atomic
// step on the Redis server: the status check and the writes that depend on
// it cannot be separated by another client's script. Scripts report refusals
// as a reply ({'terminal', status}, {'notpending'}, …), never as Redis errors,
// and the Go side turns the reply into ErrTerminal, ErrNotPending, …
//
// KEYS are the task's own keys, which share the hash tag {id}. The inboxes
// of waiting processes (see redis_await.go) are named inside the scripts,
// because a script cannot know them in advance; this is why the store needs
// one Redis server (or a primary with replicas), not a Redis Cluster.

// scriptLib is prepended to every task script.
const scriptLib = `
local function terminal(s)
  return s == 'completed' or s == 'failed' or s == 'cancelled'
end
-- legal mirrors CanTransition.
local function legal(from, to)
  if from == 'working' then return to == 'input_required' or terminal(to) end
  if from == 'input_required' then return to == 'working' or to == 'input_required' or terminal(to) end
  return false
end
local function refuse(from)
  if terminal(from) then return {'terminal', from} end
  return {'illegal', from}
end
-- changed stamps the task, tells every watcher and wakes every process
-- waiting on the task's answers. task is KEYS[1]; ARGV[1] the events
-- channel, ARGV[2] the task id, ARGV[3] the time.
local function changed(status)
  redis.call('HSET', KEYS[1], 'status', status, 'updated', ARGV[3])
  redis.call('PUBLISH', ARGV[1], cjson.encode({kind = 'status', taskId = ARGV[2], status = status}))
  for _, inbox in ipairs(redis.call('SMEMBERS', KEYS[1] .. ':waiters')) do
    redis.call('RPUSH', inbox, ARGV[2])
    redis.call('PEXPIRE', inbox, 600000)
  end
end
`

// createScript stores a new task and tidies its owner's index.
// KEYS: task [, owner index]. ARGV: channel, id, updated, record, expiry
// (unix ms), now (unix ms), index member. The task key is P:task:{id};
// the script computes other tasks' keys from it (one server, as for the
// inboxes).
var createScript = redis.NewScript(scriptLib + `
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
redis.call('HSET', KEYS[1], 'rec', ARGV[4], 'exp', ARGV[5])
changed('working')
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
if #KEYS > 1 then
  redis.call('ZADD', KEYS[2], 0, ARGV[7])
  -- the index lives as long as its longest-lived task
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl < 0 or tonumber(ARGV[6]) + ttl < tonumber(ARGV[5]) then
    redis.call('PEXPIREAT', KEYS[2], ARGV[5])
  end
  -- Drop the entries of a few expired tasks, picked at random: an owner
  -- who never lists (List drops what it meets) would otherwise grow the
  -- index by one entry per task for as long as it keeps creating them.
  -- Sampling keeps it within about twice the owner's live tasks.
  local taskPrefix = string.sub(KEYS[1], 1, #KEYS[1] - #ARGV[2] - 1)
  for _, m in ipairs(redis.call('ZRANDMEMBER', KEYS[2], 3)) do
    if redis.call('EXISTS', taskPrefix .. string.sub(m, 21) .. '}') == 0 then
      redis.call('ZREM', KEYS[2], m)
    end
  end
end
return {'ok'}
`)

// requestScript adds input requests. A key already pending, or answered
// with the answer not yet consumed, is accepted only with an equal request
// (a replay asking again) and left as it is.
// KEYS: task, input, answers. ARGV: channel, id, updated, then key, request
// pairs.
var requestScript = redis.NewScript(scriptLib + `
local from = redis.call('HGET', KEYS[1], 'status')
if not from then return {'notfound'} end
if terminal(from) then return {'terminal', from} end
local fresh = {}
for i = 4, #ARGV, 2 do
  local asked = redis.call('HGET', KEYS[2], ARGV[i])
  if not asked then
    local a = redis.call('HGET', KEYS[3], ARGV[i])
    -- a is {"q":request,"a":response}: compare request and what follows it
    if a then asked = string.sub(a, 6, 6 + #ARGV[i + 1]) == ARGV[i + 1] .. ',' and ARGV[i + 1] or '' end
  end
  if asked then
    if asked ~= ARGV[i + 1] then return {'reused', ARGV[i]} end
  else
    table.insert(fresh, i)
  end
end
if #fresh == 0 then return {'ok'} end
for _, i in ipairs(fresh) do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIREAT', KEYS[2], redis.call('HGET', KEYS[1], 'exp'))
changed('input_required')
return {'ok'}
`)

// answerScript records the answer to one pending request, together with the
// request ({"q":request,"a":response}, so that a replay asking it again is
// recognised). The status check, the pending check and the write are one
// step: an answer cannot slip in after a cancellation, nor be taken for a
// request the task no longer asks. The last answer queues a parked task.
// KEYS: task, input, answers, queue. ARGV: channel, id, updated, key,
// response.
var answerScript = redis.NewScript(scriptLib + `
local from = redis.call('HGET', KEYS[1], 'status')
if not from then return {'notfound'} end
if terminal(from) then return {'terminal', from} end
local asked = redis.call('HGET', KEYS[2], ARGV[4])
if not asked then return {'notpending'} end
redis.call('HDEL', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[4], '{"q":' .. asked .. ',"a":' .. ARGV[5] .. '}')
redis.call('PEXPIREAT', KEYS[3], redis.call('HGET', KEYS[1], 'exp'))
-- HDEL of the last field removed the hash: nothing is pending any more
if redis.call('EXISTS', KEYS[2]) == 0 then
  changed('working')
  if redis.call('HDEL', KEYS[1], 'parked') == 1 then
    redis.call('XADD', KEYS[4], '*', 'task', ARGV[2])
  end
else
  changed('input_required')
end
return {'ok'}
`)

// fenceLib checks the fence token of the calling run; task is KEYS[1].
const fenceLib = `
local function fenced(token)
  local current = redis.call('HGET', KEYS[1], 'token') or '0'
  if token ~= current then return {'fenced', current} end
  return nil
end
`

// finishScript ends a task; the journal goes with everything else the end
// makes useless.
// KEYS: task, input, answers, journal. ARGV: channel, id, updated, status,
// message, result, token ('0': not from a run, unfenced).
var finishScript = redis.NewScript(scriptLib + fenceLib + `
local from = redis.call('HGET', KEYS[1], 'status')
if not from then return {'notfound'} end
if ARGV[7] ~= '0' then
  local refused = fenced(ARGV[7])
  if refused then return refused end
end
local to = ARGV[4]
if not legal(from, to) then return refuse(from) end
if to == 'completed' then
  redis.call('HSET', KEYS[1], 'result', ARGV[6])
elseif to == 'failed' then
  redis.call('HSET', KEYS[1], 'error', ARGV[5], 'msg', ARGV[5])
else
  redis.call('HSET', KEYS[1], 'msg', ARGV[5])
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('HDEL', KEYS[1], 'parked', 'jbytes')
changed(to)
redis.call('DEL', KEYS[1] .. ':waiters') -- nobody needs waking any more
return {'ok'}
`)

// startRunScript begins a run: a new fence token, the module pinned if it
// is not yet, pending questions and answers kept, Park's mark cleared.
// KEYS: task, input, journal. ARGV: channel, id, updated, module.
// Reply: {'ok', token, pinned module, journal entry…}.
var startRunScript = redis.NewScript(scriptLib + `
local from = redis.call('HGET', KEYS[1], 'status')
if not from then return {'notfound'} end
if terminal(from) then return {'terminal', from} end
local token = redis.call('HINCRBY', KEYS[1], 'token', 1)
local module = redis.call('HGET', KEYS[1], 'module')
if not module then
  module = ARGV[4]
  if module ~= '' then redis.call('HSET', KEYS[1], 'module', module) end
end
redis.call('HDEL', KEYS[1], 'parked')
if redis.call('EXISTS', KEYS[2]) == 1 then changed('input_required') else changed('working') end
local reply = {'ok', token, module}
for _, e in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do table.insert(reply, e) end
return reply
`)

// appendScript appends journal entries and consumes answers for a run.
// KEYS: task, answers, journal. ARGV: token, bound (bytes), n, then n keys
// to consume, then the entries.
var appendScript = redis.NewScript(scriptLib + fenceLib + `
local from = redis.call('HGET', KEYS[1], 'status')
if not from then return {'notfound'} end
local refused = fenced(ARGV[1])
if refused then return refused end
if terminal(from) then return {'terminal', from} end
local n = tonumber(ARGV[3])
local size = 0
for i = 4 + n, #ARGV do size = size + #ARGV[i] end
local used = tonumber(redis.call('HGET', KEYS[1], 'jbytes') or '0')
if used + size > tonumber(ARGV[2]) then return {'full', tostring(used + size)} end
for i = 4, 3 + n do redis.call('HDEL', KEYS[2], ARGV[i]) end
if 4 + n <= #ARGV then
  for i = 4 + n, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
  redis.call('HINCRBY', KEYS[1], 'jbytes', size)
  redis.call('PEXPIREAT', KEYS[3], redis.call('HGET', KEYS[1], 'exp'))
end
return {'ok'}
`)

// parkScript marks a run's guest given up while it waits for input, or
// queues the task at once if nothing is pending any more.
// KEYS: task, input, queue. ARGV: id, token.
var parkScript = redis.NewScript(scriptLib + fenceLib + `
local from = redis.call('HGET', KEYS[1], 'status')
if not from then return {'notfound'} end
local refused = fenced(ARGV[2])
if refused then return refused end
if terminal(from) then return {'terminal', from} end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XADD', KEYS[3], '*', 'task', ARGV[1])
else
  redis.call('HSET', KEYS[1], 'parked', '1')
end
return {'ok'}
`)

// sharedKeyScript returns the value of a key, setting it to ARGV[1] first
// if it has none: every process that asks gets the first one's value.
// KEYS: the key. ARGV: the value to propose.
var sharedKeyScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`)

// detachScript turns a detachable call into a task: the mutable 'kind'
// field overrides the record's, and the task joins its owner's index.
// KEYS: task [, owner index]. ARGV: channel, id, updated, index member.
var detachScript = redis.NewScript(scriptLib + `
local from = redis.call('HGET', KEYS[1], 'status')
if not from then return {'notfound'} end
if terminal(from) then return {'terminal', from} end
local rec = cjson.decode(redis.call('HGET', KEYS[1], 'rec'))
local kind = redis.call('HGET', KEYS[1], 'kind') or rec.kind
if kind ~= 'call' or not rec.detachable then return {'illegal', from} end
redis.call('HSET', KEYS[1], 'kind', 'task')
if #KEYS > 1 then
  redis.call('ZADD', KEYS[2], 0, ARGV[4])
  local exp = tonumber(redis.call('HGET', KEYS[1], 'exp'))
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl < 0 or tonumber(redis.call('TIME')[1]) * 1000 + ttl < exp then
    redis.call('PEXPIREAT', KEYS[2], exp)
  end
end
changed(from)
return {'ok'}
`)

// awaitScript returns the answers to keys once all are there (leaving
// them: AppendJournal consumes them), or registers the waiting process's
// inbox so that the next change to the task wakes it. Checking and
// registering in one step means no wake-up can fall between them.
// KEYS: task, answers, waiters. ARGV: inbox, then the keys.
// Reply: {'ok', {"q":…,"a":…}…} | {'missing', pttl} | {'notfound'} |
// {'terminal', status}.
var awaitScript = redis.NewScript(scriptLib + `
local from = redis.call('HGET', KEYS[1], 'status')
if not from then return {'notfound'} end
if terminal(from) then return {'terminal', from} end
local reply = {'ok'}
for i = 2, #ARGV do
  local a = redis.call('HGET', KEYS[2], ARGV[i])
  if not a then
    redis.call('SADD', KEYS[3], ARGV[1])
    redis.call('PEXPIREAT', KEYS[3], redis.call('HGET', KEYS[1], 'exp'))
    return {'missing', redis.call('PTTL', KEYS[1])}
  end
  table.insert(reply, a)
end
return reply
`)

// reclaimScript takes over one queue entry that a dead consumer left
// pending for longer than the minimum idle time, scanning at most rounds
// pages of the group's pending list from cursor.
// KEYS: stream. ARGV: group, consumer, min idle (ms), cursor, rounds.
// Reply: {next cursor [, entry id, field, value…]}.
var reclaimScript = redis.NewScript(`
local cursor = ARGV[4]
for _ = 1, tonumber(ARGV[5]) do
  local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], cursor, 'COUNT', 1)
  cursor = r[1]
  local e = r[2][1]
  if e then
    local reply = {cursor, e[1]}
    for _, v in ipairs(e[2]) do table.insert(reply, v) end
    return reply
  end
  if cursor == '0-0' then break end
end
return {cursor}
`)

// heartbeatScript resets the idle time of the entries this consumer still
// owns, so that no other consumer reclaims work that is merely slow, and
// reports the ones it lost (acknowledged, deleted or reclaimed meanwhile).
// KEYS: stream. ARGV: group, consumer, then entry ids.
var heartbeatScript = redis.NewScript(`
local mine, lost = {}, {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    table.insert(mine, ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
-- JUSTID: claiming our own entry again is not a new delivery, so the
-- delivery count stays as it is.
for i = 1, #mine, 500 do
  local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
  for j = i, math.min(i + 499, #mine) do table.insert(args, mine[j]) end
  table.insert(args, 'JUSTID')
  redis.call(unpack(args))
end
return lost
`)

// ackScript marks an entry done and deletes it from the stream; doing it
// twice does nothing. KEYS: stream. ARGV: group, entry id.
var ackScript = redis.NewScript(`
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])
`)

// dropScript acknowledges and deletes an entry only while it is pending
// for the given consumer. KEYS: stream. ARGV: group, consumer, entry id.
var dropScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if not p[1] or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
return redis.call('XDEL', KEYS[1], ARGV[3])
`)
