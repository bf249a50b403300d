-- oidc_form.lua: POSTs the form body in BENCH_FORM (client credentials
-- come as an Authorization header on the wrk command line, which a table
-- passed to wrk.format would drop: the body and Content-Type go into
-- wrk's defaults instead). Used by bench/run.sh and bench/oidc.sh for the
-- token and introspection endpoints (Gatehouse and the oidc-provider peer).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_FORM")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
