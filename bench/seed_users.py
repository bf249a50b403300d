#!/usr/bin/python3
"""seed_users.py: inserts N bench users into an organisation's database.

    seed_users.py GATEHOUSE_BIN DATA_DIR ORG COUNT TEMPLATE_USERNAME

This BYPASSES the admin API on purpose: creating 10,000 users through it
costs one argon2id hash each (about 40 ms even at the minimum parameters),
i.e. minutes. Instead one statement run through `gatehouse db sql --write`
(the org's database is encrypted, so only the binary with its keys can
write it) gives every user a copy of the template user's argon2id hash,
computed once by the binary at `gatehouse init`, so all of them sign in
with the template's password at the server's configured parameters. Users
are user00001 .. userNNNNN, role member, state active. The write itself is
audited as one operator event; no per-user audit events are written.
Run it only while no server has the database open.
"""
import json
import subprocess
import sys

SQL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO users (id, username, username_key, email, display_name, state,
                   role, password_hash, password_changed_at, created_at,
                   updated_at, last_signin_at)
SELECT lower(hex(randomblob(16))), printf('user%05d', i),
       printf('user%05d', i), printf('user%05d@bench.example.com', i),
       'Bench User ' || i, 'active', 'member', t.password_hash,
       t.password_changed_at, t.created_at + i, t.created_at + i, NULL
FROM n, (SELECT password_hash, password_changed_at, created_at FROM users
         WHERE username_key = ?) AS t
"""


def db_sql(binary, data, org, sql, params, write=False):
    cmd = [binary, "db", "sql", "--data-dir", data, "--org", org,
           "--params", json.dumps(params)]
    if write:
        cmd.append("--write")
    r = subprocess.run(cmd + [sql], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"seed_users: {r.stderr.strip()}")
    return json.loads(r.stdout)


def main() -> int:
    if len(sys.argv) != 6:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    binary, data, org, count, template = sys.argv[1:6]
    rows = db_sql(binary, data, org, "SELECT password_hash FROM users "
                  "WHERE username_key = ?", [template.lower()])
    if not rows or not str(rows[0]["password_hash"]).startswith("$argon2id$"):
        sys.exit(f"seed_users: no argon2id hash for {template!r}")
    db_sql(binary, data, org, SQL, [int(count), template.lower()], write=True)
    n = db_sql(binary, data, org, "SELECT count(*) AS n FROM users", [])[0]["n"]
    print(f"seeded {count} users into {org} ({n} users in all)")
    print(rows[0]["password_hash"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
