-- signin.lua: JSON password sign-in, POST /o/{org}/api/v1/session, cycling
-- through the seeded users user00001 .. user<BENCH_USERS> (each thread
-- starts at a different user) with the password in BENCH_PASSWORD.
local users = tonumber(os.getenv("BENCH_USERS") or "10000")
local password = os.getenv("BENCH_PASSWORD")
local threads = 0

setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local n = 0
request = function()
  local i = ((tid or 0) * 7919 + n) % users + 1
  n = n + 1
  local body = string.format('{"username":"user%05d","password":"%s"}',
                             i, password)
  return wrk.format("POST", nil,
                    { ["Content-Type"] = "application/json" }, body)
end
