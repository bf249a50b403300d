"""The command line (docs/cli.md): help, version, init, org and user
commands, configuration precedence and errors."""

import json
import re

import pytest
import requests

from conftest import (ADMIN_PASSWORD, OTHER_PASSWORD, USER_PASSWORD, Server,
                      error_of, expect_error, free_port, normalise_list,
                      parse_cli_json, run_cli)


def test_help_lists_the_commands_and_exits_0(gatehouse_bin):
    r = run_cli([str(gatehouse_bin), "--help"])
    out = r.stdout + r.stderr
    for word in ("init", "serve", "org", "user", "app create",
                 "app assign", "--redirect-uri"):
        assert word in out, f"--help does not mention {word}: {out!r}"


@pytest.mark.parametrize("words", [["user", "add"], ["org"], ["serve"],
                                   ["init", "--org"], ["app", "create"]])
def test_help_works_after_any_command(gatehouse_bin, words):
    r = run_cli([str(gatehouse_bin), *words, "--help"])
    assert r.returncode == 0
    assert "Usage: gatehouse" in r.stdout


def test_version_prints_the_project_version(gatehouse_bin):
    r = run_cli([str(gatehouse_bin), "--version"])
    assert re.search(r"\b\d+\.\d+\.\d+\b", r.stdout), r.stdout


def test_unknown_command_is_a_usage_error(gatehouse_bin):
    r = run_cli([str(gatehouse_bin), "frobnicate"], check=False)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.strip(), "no message on stderr"


def test_unknown_option_is_a_usage_error(server):
    r = server.cli("org", "list", "--no-such-option", check=False)
    assert r.returncode == 2, (r.returncode, r.stderr)


def test_init_refuses_an_initialised_directory(server):
    r = server.cli("init", "--org", "acme", "--admin", "admin",
                   env={"GATEHOUSE_ADMIN_PASSWORD": OTHER_PASSWORD},
                   check=False)
    assert r.returncode != 0, "init overwrote an initialised directory"
    assert r.stderr.strip(), "refusal gives no reason"
    # Nothing was changed: the first password still works, the new one not.
    assert server.signin("admin", ADMIN_PASSWORD).status_code == 200
    expect_error(server.signin("admin", OTHER_PASSWORD), 401,
                 "invalid_credentials")
    r = server.cli("init", "--org", "other", "--admin", "root",
                   env={"GATEHOUSE_ADMIN_PASSWORD": OTHER_PASSWORD},
                   check=False)
    assert r.returncode != 0
    assert server.cli("org", "show", "other", check=False).returncode != 0


def password_candidates(text):
    """Tokens printed on lines that mention a password."""
    out = []
    for line in text.splitlines():
        if "password" not in line.lower():
            continue
        tail = line.split(":", 1)[1] if ":" in line else line
        for tok in re.split(r"\s+", tail):
            tok = tok.strip().strip("'\"`")
            if len(tok) >= 12 and "://" not in tok:
                out.append(tok)
    return out


def test_init_generates_and_prints_a_password_that_signs_in(server_factory):
    srv = server_factory(init=False, start=False)
    r = srv.init(env_password=False)
    out = r.stdout
    assert "/o/acme/" in out, f"init does not print the sign-in URL: {out!r}"
    cands = password_candidates(out)
    assert cands, f"init printed no password: {out!r}"
    srv.start()
    for c in cands:
        if srv.signin("admin", c).status_code == 200:
            break
    else:
        raise AssertionError(f"no printed candidate signs in: {out!r}")
    # Printed once: the server log never shows it.
    assert c not in srv.log()


def test_init_with_org_name_region_and_email(server_factory):
    srv = server_factory(init=False, start=False)
    srv.init(extra_args=["--org-name", "Acme Widgets", "--region", "us-east",
                         "--email", "root@acme.example"])
    row = srv.org_row()
    assert row["name"] == "Acme Widgets"
    assert row["region"] == "us-east"
    assert row["state"] == "active"
    assert srv.tenant_db().parent.name == "us-east"
    srv.start()
    s = srv.login()
    assert s.user["email"] == "root@acme.example"
    assert s.user["role"] == "owner"


def test_org_create_list_show_suspend_activate_delete(server):
    server.cli("org", "create", "beta", "--name", "Beta Ltd")
    orgs = normalise_list(server.cli_json("org", "list"), "orgs")
    slugs = {o["slug"]: o for o in orgs}
    assert {"acme", "beta"} <= set(slugs), orgs
    beta = server.cli_json("org", "show", "beta")
    assert beta["slug"] == "beta"
    assert beta["name"] == "Beta Ltd"
    assert beta["state"] == "active"
    assert beta["region"] == "eu"  # default_region
    assert re.fullmatch(r"[0-9a-f]{32}", beta["id"]), beta
    assert (server.data_dir / "eu" / f"{beta['id']}.db").exists()

    # Human output names the org too.
    assert "beta" in server.cli("org", "list").stdout

    server.cli("org", "suspend", "beta")
    assert server.cli_json("org", "show", "beta")["state"] == "suspended"
    server.cli("org", "activate", "beta")
    assert server.cli_json("org", "show", "beta")["state"] == "active"

    server.cli("org", "delete", "beta")
    orgs = normalise_list(server.cli_json("org", "list"), "orgs")
    left = [o for o in orgs if o["slug"] == "beta"]
    assert not left or left[0]["state"] == "deleted", left
    # It stops serving at once.
    expect_error(requests.get(server.api("/me", "beta"), timeout=10), 404,
                 "org_not_found")
    # The operator audit in the directory holds the org-level changes.
    rows = server.query("SELECT actor, action, target_type, target_id "
                        "FROM operator_audit ORDER BY seq",
                        db=server.directory_db())
    assert len(rows) >= 4, rows
    assert any(beta["id"] == r["target_id"] or "beta" == r["target_id"]
               for r in rows), rows


def test_org_create_rejects_duplicate_and_invalid_slugs(server):
    r = server.cli("org", "create", "acme", check=False)
    assert r.returncode != 0
    for bad in ("Bad_Slug", "a", "-lead", "x" * 64, "../etc"):
        r = server.cli("org", "create", bad, check=False)
        assert r.returncode != 0, f"accepted slug {bad!r}"
    r = server.cli("org", "show", "nosuchorg", check=False)
    assert r.returncode == 1, (r.returncode, r.stderr)


def test_user_add_list_show_disable_reset_password(server):
    server.cli("user", "add", "--org", "acme", "bob", "--email",
               "bob@example.com", "--display-name", "Bob B", "--role",
               "member", env={"GATEHOUSE_USER_PASSWORD": USER_PASSWORD})
    users = normalise_list(server.cli_json("user", "list", "--org", "acme"),
                           "users")
    names = {u["username"] for u in users}
    assert {"admin", "bob"} <= names, users
    bob = server.cli_json("user", "show", "--org", "acme", "bob")
    assert bob["username"] == "bob"
    assert bob["email"] == "bob@example.com"
    assert bob["display_name"] == "Bob B"
    assert bob["role"] == "member"
    assert bob["state"] == "active"
    assert "password_hash" not in bob and "password" not in bob
    assert "$argon2" not in json.dumps(users)

    # The CLI change is in the org's audit log with actor operator.
    ev = server.query("SELECT * FROM audit_events WHERE action = 'user.create' "
                      "AND target_id = ?", (bob["id"],))
    assert len(ev) == 1 and ev[0]["actor_type"] == "operator", ev
    assert USER_PASSWORD not in json.dumps(ev)

    s = server.login("bob", USER_PASSWORD)
    assert s.get(server.api("/me")).status_code == 200

    # reset-password: new password from the environment, signs out everywhere.
    server.cli("user", "reset-password", "--org", "acme", "bob",
               env={"GATEHOUSE_NEW_PASSWORD": OTHER_PASSWORD})
    expect_error(s.get(server.api("/me")), 401, "unauthenticated")
    expect_error(server.signin("bob", USER_PASSWORD), 401, "invalid_credentials")
    s = server.login("bob", OTHER_PASSWORD)

    # reset-password without the variable prints a generated one.
    r = server.cli("user", "reset-password", "--org", "acme", "bob")
    expect_error(s.get(server.api("/me")), 401, "unauthenticated")
    cands = [t.strip("'\"`") for t in re.split(r"\s+", r.stdout)]
    cands = [t for t in cands if len(t) >= 12 and "://" not in t]
    generated = [c for c in cands
                 if server.signin("bob", c).status_code == 200]
    assert generated, f"no printed password signs in: {r.stdout!r}"
    s = server.login("bob", generated[0])

    # disable: state disabled, sessions end.
    server.cli("user", "disable", "--org", "acme", "bob")
    assert server.cli_json("user", "show", "--org", "acme", "bob")["state"] == "disabled"
    assert s.get(server.api("/me")).status_code == 401
    r = server.signin("bob", generated[0])
    assert r.status_code in (401, 403), r.text
    error_of(r)


def test_user_add_generates_a_password_when_unset(server):
    r = server.cli("user", "add", "--org", "acme", "carol")
    cands = [t.strip("'\"`") for t in re.split(r"\s+", r.stdout)]
    cands = [t for t in cands if len(t) >= 12 and "://" not in t]
    assert any(server.signin("carol", c).status_code == 200 for c in cands), \
        f"no printed password signs in: {r.stdout!r}"


def test_user_commands_reject_bad_input(server):
    r = server.cli("user", "add", "--org", "acme", "admin",
                   env={"GATEHOUSE_USER_PASSWORD": USER_PASSWORD}, check=False)
    assert r.returncode != 0, "duplicate username accepted"
    r = server.cli("user", "add", "--org", "acme", "ADMIN",
                   env={"GATEHOUSE_USER_PASSWORD": USER_PASSWORD}, check=False)
    assert r.returncode != 0, "duplicate username (other case) accepted"
    r = server.cli("user", "add", "--org", "acme", "dave",
                   env={"GATEHOUSE_USER_PASSWORD": "123456"}, check=False)
    assert r.returncode != 0, "weak password accepted"
    r = server.cli("user", "add", "--org", "acme", "eve", "--role", "emperor",
                   env={"GATEHOUSE_USER_PASSWORD": USER_PASSWORD}, check=False)
    assert r.returncode == 2, (r.returncode, r.stderr)
    r = server.cli("user", "show", "--org", "nosuchorg", "admin", check=False)
    assert r.returncode == 1, (r.returncode, r.stderr)
    r = server.cli("user", "show", "--org", "acme", "nobody", check=False)
    assert r.returncode == 1, (r.returncode, r.stderr)


def test_commands_on_an_uninitialised_directory_fail(server_factory, tmp_path):
    srv = server_factory(init=False, start=False)
    r = srv.cli("org", "list", check=False)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.strip()


# ---- configuration ---------------------------------------------------------

def test_unknown_config_key_is_an_error_naming_key_and_line(server, tmp_path):
    cfg = tmp_path / "bad.conf"
    cfg.write_text("# comment\nlog_level = info\nfrobnication_level = 3\n")
    r = server.cli("org", "list", config=cfg, check=False)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "frobnication_level" in r.stderr, r.stderr
    assert re.search(r"\b3\b", r.stderr), f"no line number: {r.stderr!r}"
    # GATEHOUSE_CONFIG names the file just as well.
    r = server.cli("org", "list", env={"GATEHOUSE_CONFIG": str(cfg)},
                   check=False)
    assert r.returncode == 2 and "frobnication_level" in r.stderr, r.stderr


def test_bad_config_value_is_an_error_naming_the_key(server, tmp_path):
    cases = {"max_body_bytes": "lots", "log_level": "chatty",
             "argon2_m_kib": "1024", "dev": "maybe",
             "default_region": "Not A Region"}
    for key, value in cases.items():
        cfg = tmp_path / f"{key}.conf"
        cfg.write_text(f"{key} = {value}\n")
        r = server.cli("org", "list", config=cfg, check=False)
        assert r.returncode == 2, (key, r.returncode, r.stderr)
        assert key in r.stderr, (key, r.stderr)
    r = server.cli("org", "list", env={"GATEHOUSE_MAX_BODY_BYTES": "lots"},
                   check=False)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "max_body_bytes" in r.stderr.lower(), r.stderr
    r = server.cli("org", "list", config=tmp_path / "missing.conf", check=False)
    assert r.returncode == 2, (r.returncode, r.stderr)


def test_bad_listen_flag_is_a_usage_error(server):
    r = server.cli("serve", "--listen", "not-an-address", "--dev",
                   check=False, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "listen" in r.stderr.lower()


def test_plain_http_on_a_public_address_is_refused(server):
    r = server.cli("serve", "--listen", "0.0.0.0:0", check=False, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stderr)


def make_org_dir(gatehouse_bin, root, slug):
    srv = Server(gatehouse_bin, root / slug / "data", root / slug, org=slug)
    (root / slug).mkdir()
    srv.init()
    return srv.data_dir


def test_config_file_then_env_then_flag_precedence(gatehouse_bin, tmp_path):
    a = make_org_dir(gatehouse_bin, tmp_path, "from-file")
    b = make_org_dir(gatehouse_bin, tmp_path, "from-env")
    c = make_org_dir(gatehouse_bin, tmp_path, "from-flag")
    cfg = tmp_path / "gatehouse.conf"
    cfg.write_text(f"# where the data lives\n\ndata_dir = {a}\n")

    def slugs(extra, env=None):
        r = run_cli([str(gatehouse_bin), "--config", str(cfg), "org", "list",
                     "--json", *extra], env=env)
        return {o["slug"] for o in normalise_list(parse_cli_json(r.stdout), "orgs")}

    assert slugs([]) == {"from-file"}
    env = {"GATEHOUSE_DATA_DIR": str(b)}
    assert slugs([], env) == {"from-env"}
    assert slugs(["--data-dir", str(c)], env) == {"from-flag"}


def test_listen_from_env_overrides_the_file(server_factory, tmp_path):
    srv = server_factory(start=False)
    file_port = 1  # nothing may listen there
    cfg = tmp_path / "listen.conf"
    cfg.write_text(f"listen = 127.0.0.1:{file_port}\ndev = true\n")
    port = free_port()
    srv.port = port
    srv.start(listen=False, port=port, config=cfg,
              env={"GATEHOUSE_LISTEN": f"127.0.0.1:{port}"})
    assert requests.get(srv.url("/healthz"), timeout=5).status_code == 200
