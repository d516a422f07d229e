-- wrk script: the requests of post_token.lua at a constant pace. Each connection waits
-- GAP_MS milliseconds after every response before it sends the next request, so C
-- connections send about C * 1000 / GAP_MS requests per second while answers are fast:
--
--   wrk -t1 -c8 -d60s --latency -s bench/paced_token.lua URL -- "Basic <base64>" GAP_MS
--
-- (bench/soak.py computes GAP_MS from the rate it wants and prints the rate it got.)

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "post_token.lua")

local unpaced_init = init

function init(args)
  gap_ms = tonumber(args[2])
  if gap_ms == nil or gap_ms < 1 then
    error("usage: wrk ... -s paced_token.lua URL -- 'Basic <base64>' GAP_MS (GAP_MS >= 1)")
  end
  -- post_token.lua's second argument is the request body: pace its default request only.
  unpaced_init({args[1]})
end

function delay()
  return gap_ms
end
