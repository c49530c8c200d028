-- wrk script of scripts/bench-refresh.sh: the refresh_token grant, each refresh token used
-- exactly once.
--
--   wrk -t1 -c8 -d10s --latency -s bench/refresh.lua http://127.0.0.1:PORT/token -- \
--       TOKENS_FILE CLIENT_ID THREADS [LEFTOVER_FILE|-] [PROOFS_FILE]
--
-- Each thread takes every THREADS-th line of TOKENS_FILE (one refresh token a line) into a
-- queue. request() takes the next token from the queue; response() parses the rotated
-- refresh_token out of a 200 answer and puts it at the back of the queue, so that chains go
-- on for the whole run. Anything but a 200 with a refresh token is a failure: it is counted
-- (by status) and its chain ends. When the queue is empty (every chain is in flight or
-- broken), the request is sent with a token that cannot exist, so that it fails and is
-- counted as `starved` too, rather than hidden.
--
-- done() prints one line starting with `RESULT` (key=value pairs, latencies in ms) and, when
-- LEFTOVER_FILE is given, writes the tokens still unused (a warm-up run hands its chains on
-- to the measured run this way; a chain whose request was in flight when wrk stopped is lost).
--
-- With PROOFS_FILE (DPoP, RFC 9449: one proof a line, made just before the run by
-- crates/ostiary-server/examples/dpop_proofs.rs, since Lua cannot sign ECDSA), each request
-- carries the next unused proof in its `DPoP` header (each thread takes every THREADS-th
-- line), and a 200 answer counts only with `"token_type":"DPoP"` (else it is a failure,
-- `200-not-DPoP`: the token was not bound). When the proofs run out, the request is sent with
-- a token and a proof that cannot exist, so that it fails, and is counted as
-- `proofs_exhausted` too.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

local function urlencode(s)
   return (s:gsub("[^%w%-%._~]", function(c)
      return string.format("%%%02X", string.byte(c))
   end))
end

-- Thread state.
queue, head, tail = {}, 1, 0
leftover_path = nil
failures, starved, chained, proofs_exhausted = 0, 0, 0, 0
proofs, proof_head, proof_tail = {}, 1, 0
statuses = {}
sample = nil -- the first failed answer, for the report
local client_id
local headers
dpop = false

function init(args)
   -- args[0] is the URL; what follows `--` starts at args[1].
   local file, threads_total = args[1], tonumber(args[3])
   client_id = args[2]
   leftover_path = args[4]
   if leftover_path == "-" then leftover_path = nil end
   local proofs_file = args[5]
   if not file or not client_id or not threads_total then
      error("usage: -- TOKENS_FILE CLIENT_ID THREADS [LEFTOVER_FILE|-] [PROOFS_FILE]")
   end
   local id = wrk.thread:get("id")
   -- This thread's share of FILE's lines (every threads_total-th): appended to list, counted.
   local function take_lines(path, list, what)
      local n, taken = 0, 0
      for line in io.lines(path) do
         if line ~= "" then
            if n % threads_total == id then
               taken = taken + 1
               list[taken] = line
            end
            n = n + 1
         end
      end
      if taken == 0 then
         error("no " .. what .. " for thread " .. id .. " in " .. path)
      end
      return taken
   end
   tail = take_lines(file, queue, "refresh tokens")
   dpop = proofs_file ~= nil
   if dpop then
      proof_tail = take_lines(proofs_file, proofs, "DPoP proofs")
   end
   headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
end

function request()
   local token
   if head <= tail then
      token = queue[head]
      queue[head] = nil
      head = head + 1
   else
      starved = starved + 1
      token = "starved-no-such-token"
   end
   if dpop then
      if proof_head <= proof_tail then
         headers["DPoP"] = proofs[proof_head]
         proofs[proof_head] = nil
         proof_head = proof_head + 1
      else
         -- Out of proofs: a request bound to fail, counted, rather than one without a proof.
         -- The token stays queued (its chain is not broken by this).
         proofs_exhausted = proofs_exhausted + 1
         if token ~= "starved-no-such-token" then
            head = head - 1
            queue[head] = token
         end
         token = "proofs-exhausted-no-such-token"
         headers["DPoP"] = "proofs-exhausted.not-a.proof"
      end
   end
   local body = "grant_type=refresh_token&refresh_token=" .. urlencode(token)
      .. "&client_id=" .. urlencode(client_id)
   return wrk.format("POST", nil, headers, body)
end

function response(status, _, body)
   if status == 200 then
      local next_token = body and body:match('"refresh_token"%s*:%s*"([^"]+)"')
      if next_token and dpop and not body:match('"token_type"%s*:%s*"DPoP"') then
         status = "200-not-DPoP"
      elseif next_token then
         tail = tail + 1
         queue[tail] = next_token
         chained = chained + 1
         return
      else
         status = "200-without-refresh_token"
      end
   end
   failures = failures + 1
   if not sample then
      sample = tostring(status) .. " " .. (body or ""):sub(1, 300):gsub("%s+", " ")
   end
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, _)
   local total_failures, total_starved, total_chained, by_status = 0, 0, 0, {}
   local total_exhausted, proofs_left = 0, 0
   local leftover = {}
   local samples = {}
   for _, thread in ipairs(threads) do
      local one = thread:get("sample")
      if one then samples[#samples + 1] = one end
      total_failures = total_failures + thread:get("failures")
      total_starved = total_starved + thread:get("starved")
      total_chained = total_chained + thread:get("chained")
      total_exhausted = total_exhausted + thread:get("proofs_exhausted")
      proofs_left = proofs_left + math.max(0, thread:get("proof_tail") - thread:get("proof_head") + 1)
      for status, count in pairs(thread:get("statuses")) do
         by_status[status] = (by_status[status] or 0) + count
      end
      local q, h, t = thread:get("queue"), thread:get("head"), thread:get("tail")
      for i = h, t do
         leftover[#leftover + 1] = q[i]
      end
   end
   local e = summary.errors
   local socket_errors = e.connect + e.read + e.write + e.timeout
   local seconds = summary.duration / 1e6
   local statuses_text = {}
   for status, count in pairs(by_status) do
      statuses_text[#statuses_text + 1] = status .. ":" .. count
   end
   table.sort(statuses_text)
   io.write(string.format(
      "RESULT requests=%d seconds=%.3f rps=%.1f ok_rps=%.1f failures=%d starved=%d "
         .. "socket_errors=%d socket=connect:%d,read:%d,write:%d,timeout:%d statuses=%s p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f "
         .. "unused_tokens=%d dpop=%s proofs_exhausted=%d unused_proofs=%d\n",
      summary.requests, seconds, summary.requests / seconds,
      total_chained / seconds, total_failures, total_starved, socket_errors,
      e.connect, e.read, e.write, e.timeout,
      #statuses_text > 0 and table.concat(statuses_text, ",") or "-",
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, #leftover,
      threads[1] and tostring(threads[1]:get("dpop")) or "false", total_exhausted, proofs_left))
   for _, one in ipairs(samples) do
      io.write("FAILED ", one, "\n")
   end
   local path = threads[1] and threads[1]:get("leftover_path")
   if path then
      local f = assert(io.open(path, "w"))
      for _, token in ipairs(leftover) do
         f:write(token, "\n")
      end
      f:close()
   end
end
