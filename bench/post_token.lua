-- wrk script: POST grant_type=client_credentials with HTTP Basic client
-- authentication to the URL given on wrk's command line.
--
--   wrk -t2 -c16 -d10s --latency -s bench/post_token.lua URL -- "Basic <base64>"
--
-- Every response status is counted per thread; done() prints machine-readable
-- lines (prefixed "bench:") that bench/tokens.py parses next to wrk's own
-- summary: status counts and latency percentiles in microseconds.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local authorization = args[1]
  if authorization == nil or authorization == "" then
    error("usage: wrk ... -s post_token.lua URL -- 'Basic <base64(client_id:secret)>'")
  end
  wrk.method = "POST"
  wrk.body = "grant_type=client_credentials"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Accept"] = "application/json"
  wrk.headers["Authorization"] = authorization
  request_data = wrk.format()
  statuses = {}
end

function request()
  return request_data
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
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
