"""A locked or full database gets a clear error, no crash, no partial write."""

import fcntl
import os
import subprocess
import uuid

import pytest

from conftest import USER_PASSWORD, expect_error


def user_count(server, username):
    return server.query("SELECT COUNT(*) AS n FROM users WHERE username_key = ?",
                        (username.lower(),))[0]["n"]


@pytest.mark.slow
def test_locked_tenant_database_answers_503_busy_and_writes_nothing(server, admin):
    # Another process holds the write lock longer than the busy timeout.
    # The database is encrypted, so plain SQLite cannot open it to take
    # the lock; take it the way SQLite does in WAL mode: a POSIX lock on
    # the WAL write-lock byte (offset 120) of the -shm file.
    shm = str(server.tenant_db()) + "-shm"
    assert os.path.exists(shm)
    fd = os.open(shm, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 120)
        r = admin.post(server.api("/users"),
                       json={"username": "locked-out", "password": USER_PASSWORD},
                       timeout=60)
        expect_error(r, 503, "busy")
        assert r.headers.get("Retry-After") == "1"
    finally:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 120)
        os.close(fd)
    assert user_count(server, "locked-out") == 0
    # The lock gone, the same request succeeds and the server kept serving.
    r = admin.post(server.api("/users"),
                   json={"username": "locked-out", "password": USER_PASSWORD})
    assert r.status_code == 201, r.text
    assert user_count(server, "locked-out") == 1


@pytest.fixture
def tiny_fs(tmp_path):
    """A 3 MiB tmpfs, or a skip where this machine refuses mounts."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs",
                        str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path, keep_bytes):
    """Fills the file system holding path, leaving about keep_bytes free."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    with open(os.path.join(path, "ballast"), "wb") as f:
        f.write(b"\0" * max(0, free - keep_bytes))


@pytest.mark.slow
def test_full_disk_answers_507_and_keeps_acknowledged_writes(server_factory, tiny_fs):
    srv = server_factory(start=False)
    srv.data_dir = tiny_fs / "data"
    srv.init()
    srv.start()
    admin = srv.login()
    fill(tiny_fs, 64 * 1024)
    created, full = [], None
    for i in range(400):
        name = f"filler-{i}-{uuid.uuid4().hex[:8]}"
        r = admin.post(srv.api("/users"), json={
            "username": name, "display_name": "x" * 120,
            "email": f"{name}@example.org"})
        if r.status_code == 201:
            created.append(name)
            continue
        full = r
        break
    assert full is not None, "the disk never filled up"
    expect_error(full, 507, "storage_full")
    # Reads keep working, and every acknowledged user is there.
    r = admin.get(srv.api("/me"))
    assert r.status_code == 200
    os.remove(tiny_fs / "ballast")
    names = {row["username"] for row in srv.query("SELECT username FROM users")}
    assert set(created) <= names
    assert srv.query("PRAGMA integrity_check")[0]["integrity_check"] == "ok"
    # With room again, writes succeed.
    r = admin.post(srv.api("/users"), json={"username": "after-full"})
    assert r.status_code == 201, r.text
