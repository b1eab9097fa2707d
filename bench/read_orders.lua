-- wrk script: reads on a database of many orders.
-- OMS_BENCH_MODE: "get" (GET /v1/orders/{random id}), "list" (status filter, newest 50),
-- or "search" (q=<one of 1,000 customer emails>). OMS_BENCH_ORDERS: how many were seeded.
function init(args)
  key = os.getenv("OMS_BENCH_KEY")
  mode = os.getenv("OMS_BENCH_MODE")
  n = tonumber(os.getenv("OMS_BENCH_ORDERS"))
  statuses = {"pending", "confirmed", "cancelled", "shipped"}
  math.randomseed(os.time())
end

function request()
  local path
  if mode == "get" then
    path = string.format("/v1/orders/ord_seed_%09d", math.random(1, n))
  elseif mode == "list" then
    path = "/v1/orders?limit=50&status=" .. statuses[math.random(1, 4)]
  else
    path = string.format("/v1/orders?limit=50&q=bench-%d@example.com", math.random(1, 1000))
  end
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. key})
end
