"""/healthz, /readyz and /metrics (docs/api.md, Health and metrics)."""

import requests

from conftest import ADMIN_PASSWORD, metric_sum, parse_metrics


def test_healthz_and_readyz(server):
    r = requests.get(server.url("/healthz"), timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok"}, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    r = requests.get(server.url("/readyz"), timeout=10)
    assert r.status_code == 200, r.text


def test_metrics_is_prometheus_text(server):
    r = requests.get(server.url("/metrics"), timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers
    text = r.text
    for name in ("gatehouse_http_requests_total",
                 "gatehouse_http_request_duration_seconds",
                 "gatehouse_signins_total"):
        assert f"# TYPE {name}" in text, f"no TYPE line for {name}"
    assert "# TYPE gatehouse_http_requests_total counter" in text
    assert "# TYPE gatehouse_http_request_duration_seconds histogram" in text
    m = parse_metrics(text)
    buckets = [k for k in m if k[0] == "gatehouse_http_request_duration_seconds_bucket"]
    assert buckets, "no histogram buckets"
    assert any(dict(k[1]).get("le") == "+Inf" for k in buckets)


def test_metrics_count_requests_and_signins(server):
    before = server.metrics()
    assert server.signin("admin", ADMIN_PASSWORD).status_code == 200
    assert server.signin("admin", "Wrong-Password-1234!").status_code == 401
    assert server.signin("ghost", "Wrong-Password-1234!").status_code == 401
    for _ in range(3):
        requests.get(server.url("/healthz"), timeout=10)
    requests.get(server.url("/o/nope/api/v1/me"), timeout=10)
    after = server.metrics()

    def delta(name, **labels):
        return metric_sum(after, name, **labels) - metric_sum(before, name, **labels)

    assert delta("gatehouse_signins_total", result="success") == 1
    assert delta("gatehouse_signins_total", result="failure") == 2
    assert delta("gatehouse_http_requests_total", method="POST", status="200") >= 1
    assert delta("gatehouse_http_requests_total", method="POST", status="401") == 2
    assert delta("gatehouse_http_requests_total", method="GET", status="404") >= 1
    # The route label is the pattern, not the raw path (bounded cardinality).
    routes = {dict(k[1]).get("route") for k in after
              if k[0] == "gatehouse_http_requests_total"}
    assert any(r and "session" in r for r in routes), routes
    assert not any(r and "nope" in r for r in routes), routes
    health = [k for k in after if k[0] == "gatehouse_http_requests_total"
              and dict(k[1]).get("route") == "/healthz"]
    assert health and sum(after[k] for k in health) >= 3
    # Each request also lands in the histogram.
    assert delta("gatehouse_http_request_duration_seconds_count") >= 7


def test_metrics_do_not_grow_with_unknown_paths(server):
    for i in range(50):
        requests.get(server.url(f"/random-{i}"), timeout=10)
    text = requests.get(server.url("/metrics"), timeout=10).text
    assert "random-" not in text
