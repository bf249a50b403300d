"""SCIM 2.0 conformance checked by a third-party SCIM implementation
(docs/api.md, SCIM 2.0): tests/browser/scim_conformance.mjs validates the
discovery documents, users, groups, errors and list responses with the
RFC 7643 schema definitions of SCIMMY (npm "scimmy"), builds its request
bodies with it, and compares every filter's answer with what SCIMMY's own
filter evaluator selects from the unfiltered list."""

import json
import os
import shutil
import subprocess

from conftest import REPO, SLOW

BROWSER_DIR = REPO / "tests" / "browser"
SCRIPT = BROWSER_DIR / "scim_conformance.mjs"


def scim_token(server, sess):
    r = sess.post(server.api("/scim-tokens"), json={"name": "conformance"},
                  timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["token"]


def run_conformance(server, token):
    node = shutil.which("node")
    assert node, "node is missing: scripts/install-deps.sh test"
    assert (BROWSER_DIR / "node_modules" / "scimmy").is_dir(), \
        "scimmy is missing: npm ci --prefix tests/browser is needed"
    env = dict(os.environ, GH_BASE=server.base, GH_ORG=server.org,
               GH_SCIM_TOKEN=token)
    r = subprocess.run([node, str(SCRIPT)], cwd=BROWSER_DIR, env=env,
                       capture_output=True, text=True, timeout=120 * SLOW)
    assert r.returncode == 0, \
        f"scim_conformance.mjs failed ({r.returncode}):\n" \
        f"{r.stderr[-6000:]}\n{r.stdout[-2000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_scimmy_conformance(server, admin):
    summary = run_conformance(server, scim_token(server, admin))
    print(json.dumps(summary, indent=1))
    assert summary["problems"] == []
    assert summary["users_created"] == 12
    # Every section ran its checks.
    assert summary["discovery"] >= 6
    assert summary["filters"] >= 30
    assert summary["groups"] >= 4
    assert summary["errors"] == 9
    assert summary["paging"] == 7
    # The data discriminates: filters select different, non-trivial sets.
    matched = {f["matched"] for f in summary["filter_results"]}
    assert len(matched) >= 5, summary["filter_results"]
    # What the server holds afterwards agrees with the run.
    rows = server.query("SELECT count(*) AS n FROM users WHERE state = ?",
                        ("disabled",))
    assert rows[0]["n"] == 3
