-- report.lua: prepended to every scenario's wrk script by bench/run.sh.
-- Prints one machine-readable line after wrk's own report:
--   BENCH requests=N seconds=S rps=R p50_us=A p99_us=B status_errors=C socket_errors=D
-- status_errors are wrk's count of responses with a status of 400 or more
-- (every scenario here expects a 2xx); socket_errors are connect, read,
-- write and timeout errors.
done = function(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_us=%d p99_us=%d " ..
    "status_errors=%d socket_errors=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
