"""Imported password hashes: bcrypt ($2b$) verifies and is upgraded to
argon2id on the next successful sign-in; argon2id imports verify."""

import warnings

import pytest

from conftest import ADMIN_PASSWORD, USER_PASSWORD, expect_error

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import crypt  # Debian 12's Python 3.11 still has it
    except ImportError:  # pragma: no cover
        crypt = None


def bcrypt_hash(password, rounds=16):
    if crypt is None:
        pytest.skip("Python's crypt module is unavailable")
    h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=rounds))
    assert h and h.startswith("$2b$"), h
    return h


def stored_hash(server, username):
    rows = server.query("SELECT password_hash FROM users WHERE username = ?",
                        (username,))
    assert len(rows) == 1, rows
    return rows[0]["password_hash"]


def test_bcrypt_import_signs_in_and_is_upgraded(server, admin):
    h = bcrypt_hash(USER_PASSWORD)
    u = server.create_user(admin, "legacy", password_hash=h)
    assert h not in str(u)
    assert stored_hash(server, "legacy") == h
    expect_error(server.signin("legacy", "Wrong-Password-1234!"), 401,
                 "invalid_credentials")
    assert stored_hash(server, "legacy") == h, "re-hashed after a failure"

    s = server.login("legacy", USER_PASSWORD)
    assert s.user["id"] == u["id"]
    new = stored_hash(server, "legacy")
    assert new.startswith("$argon2id$"), new
    # Current parameters (defaults m=19456, t=2, p=1).
    assert "m=19456" in new and "t=2" in new and "p=1" in new, new
    ev = server.query("SELECT * FROM audit_events WHERE action = "
                      "'user.password_rehash' AND target_id = ?", (u["id"],))
    assert len(ev) == 1, ev
    assert USER_PASSWORD not in str(ev) and h not in str(ev)
    # Still signs in; the hash is not rewritten again.
    server.login("legacy", USER_PASSWORD)
    assert stored_hash(server, "legacy") == new


def test_bcrypt_72_byte_limit_does_not_let_a_longer_password_in(server, admin):
    """bcrypt ignores bytes past 72; an import must still verify exactly
    what bcrypt verifies, and after the upgrade only the real password."""
    pw = "Tide-Lantern-" * 6 + "end"  # 81 characters
    h = bcrypt_hash(pw)
    server.create_user(admin, "longpw", password_hash=h)
    server.login("longpw", pw)
    assert stored_hash(server, "longpw").startswith("$argon2id$")
    # After the upgrade a password that only shares the first 72 bytes fails.
    expect_error(server.signin("longpw", pw[:72] + "XXXXXXXXX"), 401,
                 "invalid_credentials")


def test_argon2id_hash_import_verifies(server, admin):
    h = stored_hash(server, "admin")
    assert h.startswith("$argon2id$"), h
    server.create_user(admin, "twin", password_hash=h)
    s = server.login("twin", ADMIN_PASSWORD)
    assert s.user["username"] == "twin"
    assert stored_hash(server, "twin") == h  # already current: no rehash


def test_bad_imported_hashes_are_refused(server, admin):
    for bad in ("$2b$04$short", "$1$abc$def", "$argon2i$v=19$m=16,t=2,p=1$c2FsdA$aGFzaA",
                "$y$j9T$abc$def", "*", "", "$2b$99$" + "a" * 53):
        r = admin.post(server.api("/users"),
                       json={"username": "badhash", "password_hash": bad})
        expect_error(r, 400, "invalid_request")
    assert not server.query("SELECT id FROM users WHERE username = 'badhash'")
