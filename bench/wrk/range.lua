-- wrk -s bench/wrk/range.lua: POST /v3/kv/range, key "foo" (linearizable, the default).
wrk.method = "POST"
wrk.body = '{"key":"Zm9v"}'
wrk.headers["Content-Type"] = "application/json"
