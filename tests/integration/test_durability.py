"""Durability: kill -9 in the middle of a stream of writes loses no
acknowledged write and leaves consistent databases."""

import threading
import time

import pytest
import requests

from conftest import db_connect


def integrity(path):
    c = db_connect(path)
    try:
        return [r[0] for r in c.execute("PRAGMA integrity_check").fetchall()]
    finally:
        c.close()


def tenant_integrity(server):
    """The encrypted tenant database, checked through its keys."""
    return [r["integrity_check"] for r in
            server.query("PRAGMA integrity_check")]


@pytest.mark.slow
def test_kill_9_mid_stream_loses_no_acknowledged_write(server):
    admin = server.login()
    token = server.create_token(admin, "durability", days=1)["token"]
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def writer(n):
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token}"
        i = 0
        while not stop.is_set():
            name = f"w{n}-{i}"
            i += 1
            try:
                r = s.post(server.api("/users"), timeout=10,
                           json={"username": name, "display_name": name})
            except requests.RequestException:
                continue
            if r.status_code == 201:
                with lock:
                    acked.append((name, r.json()["id"]))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            if len(acked) >= 150:
                break
        time.sleep(0.05)
    server.kill()  # SIGKILL while the writers keep going
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 150, f"only {len(acked)} writes acknowledged in 30 s"

    # Databases are consistent before the server touches them again.
    assert integrity(server.directory_db()) == ["ok"]
    assert tenant_integrity(server) == ["ok"]

    server.start()
    admin = server.login()
    present = {}
    cursor = None
    while True:
        url = server.api("/users?limit=200" + (f"&cursor={cursor}" if cursor else ""))
        body = admin.get(url).json()
        present.update({u["id"]: u["username"] for u in body["users"]})
        cursor = body["next_cursor"]
        if not cursor:
            break
    missing = [(n, i) for n, i in acked if present.get(i) != n]
    assert not missing, f"{len(missing)} acknowledged users lost: {missing[:5]}"
    # Nothing half-written: every user has its user.create event.
    rows = server.query("SELECT u.id FROM users u LEFT JOIN audit_events a "
                        "ON a.target_id = u.id AND a.action = 'user.create' "
                        "WHERE a.id IS NULL AND u.username LIKE 'w%'")
    assert rows == [], f"users without their audit event: {rows}"
    events = server.query("SELECT target_id FROM audit_events "
                          "WHERE action = 'user.create'")
    ids = {r["id"] for r in server.query("SELECT id FROM users")}
    assert all(e["target_id"] in ids for e in events), "event for a missing user"
    server.stop()
    assert integrity(server.directory_db()) == ["ok"]
    assert tenant_integrity(server) == ["ok"]
    server.start()
