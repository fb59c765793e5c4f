-- wrk script: GET /m/lookup for each query hash in turn, with the API key.
-- Environment: SAFEGUARD_QUERIES (file of PDQ hex lines), SAFEGUARD_KEY.
local queries = {}
local key = os.getenv("SAFEGUARD_KEY")
for line in io.lines(os.getenv("SAFEGUARD_QUERIES")) do
  queries[#queries + 1] = line
end
local i = 0
local matched, errors = 0, 0

request = function()
  i = i % #queries + 1
  return wrk.format("GET", "/m/lookup?signal_type=pdq&signal=" .. queries[i], {
    ["Authorization"] = "Bearer " .. key,
  })
end

response = function(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
  end
end

done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("requests=%d non2xx=%d errors_connect=%d errors_timeout=%d\n",
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.timeout))
end
