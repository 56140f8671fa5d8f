-- The wrk side of the API benchmark: bench/wrk.ts starts wrk with this script and reads what done() prints.
--
-- Settings arrive in environment variables rather than script arguments: wrk decides whether delay()
-- exists when it loads the script, before init(args) runs, and a delay() that returned 0 would still
-- cost a timer per request in the closed-loop runs.
--   BENCH_WRK_USERS     one line per user: access token, a tab, the user's task ids separated by spaces
--   BENCH_WRK_REQUESTS  one line per request kind, tab-separated: weight, method, path, JSON body (may be
--                       empty); "{id}" in the path stands for one of the requesting user's own tasks
--   BENCH_WRK_THINK_MS  "min-max": wait a random think time before every request (paced users); unset
--                       for a closed loop

local think = os.getenv("BENCH_WRK_THINK_MS")
if think then
  local low, high = think:match("^(%d+)-(%d+)$")
  low = assert(tonumber(low), "BENCH_WRK_THINK_MS must look like 500-1500")
  high = tonumber(high)
  -- wrk calls delay() before each request, the first one too, so the users start staggered.
  -- The think time is not part of the latency: wrk starts the clock when it writes the request.
  function delay()
    return math.random(low, high)
  end
end

local users = {}
local templates = {}
local totalWeight = 0

local function loadUsers(path)
  for line in io.lines(path) do
    local token, ids = line:match("^([^\t]+)\t(.*)$")
    local bearer = "Bearer " .. token
    local user = {
      ids = {},
      -- wrk.format adds Host and Content-Length to these tables; each request rewrites both.
      plain = { ["Authorization"] = bearer },
      json = { ["Authorization"] = bearer, ["Content-Type"] = "application/json" },
    }
    for id in ids:gmatch("%S+") do user.ids[#user.ids + 1] = id end
    assert(#user.ids > 0, "every user in BENCH_WRK_USERS needs a task id")
    users[#users + 1] = user
  end
  assert(#users > 0, "BENCH_WRK_USERS lists no user")
end

local function loadTemplates(path)
  for line in io.lines(path) do
    local weight, method, target, body = line:match("^(%d+)\t(%u+)\t([^\t]+)\t(.*)$")
    totalWeight = totalWeight + tonumber(weight)
    local prefix, suffix = target:match("^(.-){id}(.*)$")
    templates[#templates + 1] = {
      upTo = totalWeight, method = method, path = target, prefix = prefix, suffix = suffix,
      body = body ~= "" and body or nil,
    }
  end
  assert(totalWeight > 0, "BENCH_WRK_REQUESTS lists no request")
end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("threadIndex", threads)
end

function init(args)
  -- Every thread has its own Lua state; unseeded, all of them would draw the same sequence.
  math.randomseed(os.time() * 1000 + (threadIndex or 0) * 7919)
  loadUsers(assert(os.getenv("BENCH_WRK_USERS"), "BENCH_WRK_USERS is not set"))
  loadTemplates(assert(os.getenv("BENCH_WRK_REQUESTS"), "BENCH_WRK_REQUESTS is not set"))
end

function request()
  local user = users[math.random(#users)]
  local ticket = math.random(totalWeight)
  local template = templates[#templates]
  for i = 1, #templates do
    if ticket <= templates[i].upTo then template = templates[i]; break end
  end
  local path = template.path
  if template.prefix then path = template.prefix .. user.ids[math.random(#user.ids)] .. template.suffix end
  if template.body then return wrk.format(template.method, path, user.json, template.body) end
  return wrk.format(template.method, path, user.plain)
end

-- No response(): defining one makes wrk hand every header and body to Lua, which costs the CPUs the
-- server shares. summary.errors.status counts answers above 399; this API sends no 1xx or 3xx to these
-- requests, so that is every answer outside 2xx.

function done(summary, latency, requests)
  local e = summary.errors
  local answered = summary.requests > 0
  local function us(value)
    if not answered or value ~= value then return 0 end -- no answers: the histogram's figures mean nothing
    return value
  end
  io.write(string.format(
    'BENCH_WRK_RESULT {"durationUs":%d,"requests":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latencyUs":{"mean":%.1f,"p50":%d,"p95":%d,"p99":%d,"max":%d}}\n',
    summary.duration, summary.requests,
    e.connect, e.read, e.write, e.status, e.timeout,
    us(latency.mean), us(latency:percentile(50)), us(latency:percentile(95)), us(latency:percentile(99)), us(latency.max)))
end
