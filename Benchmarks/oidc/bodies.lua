-- wrk script: POST a different form body with every request, for single-use credentials
-- (authorization codes, refresh tokens), used by scripts/bench-oidc.
--
--   wrk -t THREADS ... -s bodies.lua URL -- BODIES_FILE THREADS
--
-- BODIES_FILE holds one urlencoded body a line. Thread k of THREADS takes lines k, k+THREADS,
-- k+2*THREADS, ... so no two threads ever send the same credential, and each thread spends
-- its lines in the order they were minted (oldest first; codes expire). A thread that runs out
-- stops rather than reuse one: a reused code or refresh token is refused (and a reused refresh
-- token revokes its family), which would measure the failure path instead.
-- Headers (Authorization, Content-Type) come from wrk's -H options.

local threads = {}

-- Runs in the main Lua state, once per thread, before the thread starts.
function setup(thread)
   table.insert(threads, thread)
   thread:set("id", #threads)
end

-- Runs in each thread's own Lua state.
function init(args)
   local path, count = args[1], tonumber(args[2])
   bodies, used, exhausted = {}, 0, false
   local line_number = 0
   for line in io.lines(path) do
      if line_number % count == id - 1 then
         bodies[#bodies + 1] = line
      end
      line_number = line_number + 1
   end
   available = #bodies
end

function request()
   if used == #bodies then
      exhausted = true
      wrk.thread:stop()
      -- request() must return something; this harmless request is never answered to wrk,
      -- because the thread's event loop ends first.
      return wrk.format("GET", "/healthz")
   end
   -- wrk also calls request() once before the run, to check the script's request: that
   -- body is spent unsent, never reused.
   used = used + 1
   return wrk.format("POST", nil, nil, bodies[used])
end

-- Runs in the main Lua state after the run: a line scripts/bench-oidc parses.
function done(summary, latency, requests)
   local used_total, available, ran_out = 0, 0, 0
   for _, thread in ipairs(threads) do
      used_total = used_total + thread:get("used")
      available = available + thread:get("available")
      if thread:get("exhausted") then ran_out = ran_out + 1 end
   end
   io.write(string.format("bodies: used %d of %d, threads out of bodies %d\n", used_total, available, ran_out))
end
