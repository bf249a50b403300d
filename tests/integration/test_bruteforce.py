"""Brute-force protection against the real binary (docs/api.md, Brute-force
protection): per-address and per-org request rates on the sign-in
endpoints, per-account progressive lockout by address, and a legitimate
user on another address still signing in while one address floods.

The server trusts 127.0.0.1 as a proxy, so X-Forwarded-For picks the
client address each request comes from."""

import concurrent.futures

import pytest

from conftest import USER_PASSWORD, expect_error

ATTACKER = "198.51.100.9"
OWNER = "203.0.113.5"


def guarded(server_factory, **env):
    base = {"GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1"}
    base.update({f"GATEHOUSE_{k.upper()}": str(v) for k, v in env.items()})
    return server_factory(serve_env=base)


def signin(server, username, password, ip, sess=None):
    s = sess or server.new_session()
    return s.post(server.api("/session"),
                  json={"username": username, "password": password},
                  headers={"X-Forwarded-For": ip}, timeout=30)


def reasons(server, result=None):
    rows = server.query("SELECT result, reason, source_ip FROM "
                        "signin_events ORDER BY seq")
    return [(r["reason"], r["source_ip"]) for r in rows
            if result is None or r["result"] == result]


def test_failures_lock_the_account_from_that_address_only(server_factory):
    server = guarded(server_factory, lockout_failures=3,
                     signin_rate_ip_per_min=10000)
    admin = server.login()
    server.create_user(admin, "victim", password=USER_PASSWORD)
    for _ in range(3):
        expect_error(signin(server, "victim", "wrong-guess-1", ATTACKER),
                     401, "invalid_credentials")
    # Now even the right password is refused from there, unchecked.
    r = signin(server, "victim", USER_PASSWORD, ATTACKER)
    expect_error(r, 429, "too_many_attempts")
    assert 0 < int(r.headers["Retry-After"]) <= 3600
    # Case does not dodge it: the account is the same.
    expect_error(signin(server, "VICTIM", "x", ATTACKER), 429,
                 "too_many_attempts")
    # The owner, elsewhere, signs in.
    r = signin(server, "victim", USER_PASSWORD, OWNER)
    assert r.status_code == 200, r.text
    # ... which does not forgive the attacker's address.
    expect_error(signin(server, "victim", USER_PASSWORD, ATTACKER), 429,
                 "too_many_attempts")
    log = reasons(server)
    # Three guesses were checked; every later try was refused unchecked.
    checked = [r for r in log if r[1] == ATTACKER and
               r[0] != "too_many_attempts"]
    assert len(checked) == 3, log
    assert ("too_many_attempts", ATTACKER) in log, log
    assert ("ok", OWNER) in log, log


def test_waits_grow_with_each_failure(server_factory):
    server = guarded(server_factory, lockout_failures=2,
                     signin_rate_ip_per_min=10000, lockout_max_s=7200)
    for _ in range(2):
        expect_error(signin(server, "ghost", "nope", ATTACKER), 401,
                     "invalid_credentials")
    r = signin(server, "ghost", "nope", ATTACKER)
    expect_error(r, 429, "too_many_attempts")
    first = int(r.headers["Retry-After"])
    # Unknown users are guarded the same way (no enumeration), and the
    # wait is one interval: 15 min / 2 failures.
    assert 440 <= first <= 450, first


def test_flood_from_one_address_is_rate_limited_while_another_signs_in(
        server_factory):
    server = guarded(server_factory, signin_rate_ip_per_min=30,
                     lockout_failures=5)
    admin = server.login()
    server.create_user(admin, "olive", password=USER_PASSWORD)

    def attack(i):
        return signin(server, "olive", f"guess-{i}", ATTACKER).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(attack, range(120)))
    assert codes.count(429) >= 100, codes
    # Only the burst reached the password check: few guesses were made.
    assert codes.count(401) <= 11, codes
    assert set(codes) <= {401, 429}, codes
    r = signin(server, "olive", "guess", ATTACKER)
    expect_error(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) >= 1
    # The owner on another address is not affected.
    r = signin(server, "olive", USER_PASSWORD, OWNER)
    assert r.status_code == 200, r.text
    # The form sign-in shares the address budget.
    s = server.new_session()
    r = s.post(server.url(f"/o/{server.org}/login"),
               data={"username": "olive", "password": "x"},
               headers={"X-Forwarded-For": ATTACKER})
    assert r.status_code == 429, r.status_code


def test_an_ipv6_client_counts_by_its_slash_64(server_factory):
    server = guarded(server_factory, signin_rate_ip_per_min=6,
                     lockout_failures=0)
    codes = [signin(server, "nobody", "x", f"2001:db8:0:1::{i:x}").status_code
             for i in range(1, 12)]
    assert 429 in codes, codes
    # Another /64 has its own budget.
    assert signin(server, "nobody", "x",
                  "2001:db8:0:2::1").status_code == 401


def test_the_org_budget_holds_across_addresses(server_factory):
    server = guarded(server_factory, signin_rate_ip_per_min=10000,
                     signin_rate_org_per_min=12, lockout_failures=0)
    codes = [signin(server, "nobody", "x", f"192.0.2.{i}").status_code
             for i in range(1, 15)]
    assert codes[0] == 401 and 429 in codes, codes
    first = codes.index(429)
    r = signin(server, "nobody", "x", "192.0.2.200")
    expect_error(r, 429, "rate_limited")
    assert first <= 4, codes


def test_passkey_options_are_rate_limited(server_factory):
    server = guarded(server_factory, signin_rate_ip_per_min=6)
    s = server.new_session()
    codes = [s.post(server.api("/session/passkey/options"),
                    headers={"X-Forwarded-For": ATTACKER}).status_code
             for _ in range(8)]
    assert codes[0] == 200 and codes[-1] == 429, codes


@pytest.fixture
def redis_url(tmp_path):
    """A redis-server of its own on a free loopback port."""
    import shutil
    import socket
    import subprocess
    import time

    from conftest import free_port

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (scripts/install-deps.sh "
                    "test installs it)")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    end = time.time() + 10
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def test_nodes_sharing_redis_share_the_budgets(server_factory, redis_url):
    a = guarded(server_factory, signin_rate_ip_per_min=6,
                lockout_failures=0, redis_url=redis_url)
    b = guarded(server_factory, signin_rate_ip_per_min=6,
                lockout_failures=0, redis_url=redis_url)
    alone = guarded(server_factory, signin_rate_ip_per_min=6,
                    lockout_failures=0)
    # The burst (a third of 6, plus one) is spent on node a...
    codes = [signin(a, "nobody", "x", ATTACKER).status_code
             for _ in range(3)]
    assert codes == [401, 401, 401], codes
    # ...so node b refuses the same address at once,
    expect_error(signin(b, "nobody", "x", ATTACKER), 429, "rate_limited")
    # another address still has its budget there,
    assert signin(b, "nobody", "x", OWNER).status_code == 401
    # and a node counting alone knows nothing of it.
    assert signin(alone, "nobody", "x", ATTACKER).status_code == 401


def test_a_bad_redis_url_stops_serve(server_factory):
    srv = server_factory(start=False)
    from conftest import free_port
    r = srv.cli("serve", "--listen", f"127.0.0.1:{free_port()}",
                env={"GATEHOUSE_REDIS_URL": "http://example"}, check=False)
    assert r.returncode != 0
    assert "redis_url" in r.stderr, r.stderr
