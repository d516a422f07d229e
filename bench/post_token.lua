-- wrk script: POST grant_type=client_credentials with HTTP Basic client
-- authentication to the URL given on wrk's command line.
--
--   wrk -t2 -c16 -d10s --latency -s bench/post_token.lua URL -- "Basic <base64>" [BODY [POOL]]
--
-- BODY (form-encoded) replaces grant_type=client_credentials, e.g.
-- "token=..." for introspection. With POOL, each request sends BODY followed
-- by the next line of the file POOL.N, where N is the wrk thread's number
-- (0, 1, ...): "grant_type=refresh_token&refresh_token=" and a file of
-- refresh tokens send each token exactly once. A thread whose file is used up
-- stops (wrk's Requests/sec then counts the time until the last thread stopped;
-- "bench:pool_exhausted" says how many threads ran out).
--
-- Every response status is counted per thread; done() prints machine-readable
-- lines (prefixed "bench:") that bench/tokens.py parses next to wrk's own
-- summary: status counts and latency percentiles in microseconds.

local threads = {}

function setup(thread)
  thread:set("thread_number", #threads)
  table.insert(threads, thread)
end

function init(args)
  local authorization = args[1]
  if authorization == nil or authorization == "" then
    error("usage: wrk ... -s post_token.lua URL -- 'Basic <base64(client_id:secret)>' [BODY [POOL]]")
  end
  wrk.method = "POST"
  wrk.body = args[2] or "grant_type=client_credentials"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Accept"] = "application/json"
  wrk.headers["Authorization"] = authorization
  request_data = wrk.format()
  statuses = {}
  exhausted = 0
  if args[3] ~= nil then
    prefix = args[2]
    pool = {}
    local path = args[3] .. "." .. thread_number
    local file = io.open(path, "r")
    if file == nil then
      error("cannot read the pool file " .. path)
    end
    for line in file:lines() do
      if line ~= "" then
        table.insert(pool, line)
      end
    end
    file:close()
    next_index = 1
  end
end

function request()
  if pool == nil then
    return request_data
  end
  if next_index > #pool then
    exhausted = 1
    wrk.thread:stop()
    -- Should wrk still send this one: an unknown token, refused without
    -- touching any other (a spent one would count as reuse).
    return wrk.format(nil, nil, nil, prefix .. "pool-exhausted")
  end
  local body = prefix .. pool[next_index]
  next_index = next_index + 1
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  local ran_out = 0
  for _, thread in ipairs(threads) do
    ran_out = ran_out + (thread:get("exhausted") or 0)
    local counts = thread:get("statuses")
    if counts ~= nil then
      for status, n in pairs(counts) do
        totals[status] = (totals[status] or 0) + n
      end
    end
  end
  for status, n in pairs(totals) do
    io.write(string.format("bench:status %d %d\n", status, n))
  end
  io.write(string.format("bench:requests %d\n", summary.requests))
  io.write(string.format("bench:pool_exhausted %d\n", ran_out))
  io.write(string.format("bench:duration_us %d\n", summary.duration))
  io.write(string.format("bench:errors connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
  for _, p in ipairs({ 50, 90, 99 }) do
    io.write(string.format("bench:latency_us p%d %d\n", p, latency:percentile(p)))
  end
  io.write(string.format("bench:latency_us mean %.1f\n", latency.mean))
  io.write(string.format("bench:latency_us max %d\n", latency.max))
end
