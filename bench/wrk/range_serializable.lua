-- wrk -s bench/wrk/range_serializable.lua: POST /v3/kv/range, key "foo", serializable (no ReadIndex).
wrk.method = "POST"
wrk.body = '{"key":"Zm9v","serializable":true}'
wrk.headers["Content-Type"] = "application/json"
