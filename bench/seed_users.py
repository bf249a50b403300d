#!/usr/bin/python3
"""seed_users.py: inserts N bench users straight into a tenant database.

    seed_users.py TENANT_DB COUNT TEMPLATE_USERNAME

This BYPASSES the API and the CLI on purpose: creating 10,000 users through
the admin API costs one argon2id hash each (about 40 ms even at the minimum
parameters), i.e. minutes. Instead every user gets a copy of the template
user's argon2id hash (computed once by the binary at `gatehouse init`), so
all of them sign in with the template's password at the server's configured
parameters. Users are user00001 .. userNNNNN, role member, state active.
No audit events are written for them. Run it only while no server has the
database open.
"""
import os
import sqlite3
import sys
import time


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    path, count, template = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    db = sqlite3.connect(path)
    row = db.execute(
        "SELECT password_hash, password_changed_at FROM users "
        "WHERE username_key = ?", (template.lower(),)).fetchone()
    if row is None or not row[0] or not row[0].startswith("$argon2id$"):
        print(f"seed_users: no argon2id hash for {template!r} in {path}",
              file=sys.stderr)
        return 1
    pw_hash, changed = row
    now = int(time.time() * 1000)
    rows = []
    for i in range(1, count + 1):
        name = f"user{i:05d}"
        rows.append((os.urandom(16).hex(), name, name,
                     f"{name}@bench.example.com", f"Bench User {i}",
                     "active", "member", pw_hash, changed, now + i, now + i))
    with db:
        db.executemany(
            "INSERT INTO users (id, username, username_key, email, "
            "display_name, state, role, password_hash, password_changed_at, "
            "created_at, updated_at, last_signin_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)", rows)
    n = db.execute("SELECT count(*) FROM users").fetchone()[0]
    db.close()
    print(f"seeded {count} users into {os.path.basename(path)} "
          f"({n} users in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
