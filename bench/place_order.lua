-- wrk script: POST /v1/orders, each request with its own Idempotency-Key and three
-- distinct SKUs (one from each band of 1,000 of the 3,000 seeded, as the pgbench script
-- draws them), customers drawn from 1,000 emails.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
end

function init(args)
  key = os.getenv("OMS_BENCH_KEY")
  math.randomseed(os.time() + tid * 7919)
end

function request()
  counter = counter + 1
  local a = math.random(1, 1000)
  local b = math.random(1001, 2000)
  local c = math.random(2001, 3000)
  local body = string.format(
    '{"customer": {"email": "bench-%d@example.com"}, "lines": [' ..
    '{"sku": "BENCH-%d", "quantity": 1}, {"sku": "BENCH-%d", "quantity": 1}, {"sku": "BENCH-%d", "quantity": 1}]}',
    math.random(1, 1000), a, b, c)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
    ["Idempotency-Key"] = string.format("bench-%d-%d-%d", tid, counter, math.random(1, 1000000000)),
  }
  return wrk.format("POST", "/v1/orders", headers, body)
end
