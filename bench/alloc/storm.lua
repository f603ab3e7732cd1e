-- every request a new URL: file = n mod 3, width = 200 + n mod 1000 (3000 distinct URLs)
local threads = {}
function setup(thread) thread:set("tid", #threads); table.insert(threads, thread) end
function init(args)
  base = args[1]; nthreads = tonumber(args[2] or "2"); mytid = tid or 0
  counter = 0; bad = 0
  files = {"photo-5120x2880.jpg", "art-3840x2160.jpg", "art-5640x3172.jpg"}
end
function request()
  local n = counter * nthreads + mytid
  counter = counter + 1
  local f = files[(n % 3) + 1]
  local w = 200 + (math.floor(n / 3) % 1000)
  return wrk.format("GET", "/img/w_" .. w .. ",q_80/" .. base .. f)
end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + (t:get("bad") or 0) end
  local e = summary.errors
  io.write(string.format('RESULT {"requests":%d,"secs":%.2f,"p50_ms":%.1f,"p99_ms":%.1f,"bad":%d,"timeouts":%d,"sockerr":%d}\n',
    summary.requests, summary.duration/1e6, latency:percentile(50)/1000, latency:percentile(99)/1000,
    b, e.timeout, e.connect + e.read + e.write))
end
