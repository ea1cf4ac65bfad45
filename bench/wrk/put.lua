-- wrk -s bench/wrk/put.lua: POST /v3/kv/put, key "foo" value "bar" (etcd's JSON gateway format).
wrk.method = "POST"
wrk.body = '{"key":"Zm9v","value":"YmFy"}'
wrk.headers["Content-Type"] = "application/json"
