-- oidc_form.lua: POSTs the form body in BENCH_FORM (client credentials
-- come as an Authorization header on the wrk command line). Used by
-- bench/oidc.sh for the token and introspection endpoints.
local body = os.getenv("BENCH_FORM")

request = function()
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
