-- wrk script: POST /v1/content for each query hash in turn (precomputed PDQ signals), with
-- the API key. Every request has a new content id (SAFEGUARD_RUN prefixes them, so a rerun
-- never replays); accounts cycle over 1,000, so matching items group into cases.
-- Environment: SAFEGUARD_QUERIES (file of PDQ hex lines), SAFEGUARD_KEY, SAFEGUARD_RUN.
local queries = {}
local key = os.getenv("SAFEGUARD_KEY")
local run = os.getenv("SAFEGUARD_RUN") or "run"
for line in io.lines(os.getenv("SAFEGUARD_QUERIES")) do
  queries[#queries + 1] = line
end
local i = 0
request = function()
  i = i + 1
  local q = queries[(i - 1) % #queries + 1]
  local body = string.format(
    '{"id":"%s-%d","kind":"image","account":"acct-%d","signals":{"pdq":"%s"}}',
    run, i, i % 1000, q)
  return wrk.format("POST", "/v1/content", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }, body)
end

done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("requests=%d non2xx=%d errors_connect=%d errors_timeout=%d\n",
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.timeout))
end
