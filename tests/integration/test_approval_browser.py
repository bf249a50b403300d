"""Approval of a sign-in from another device in Debian's headless Chromium
(tests/browser/approval.mjs, driven over the DevTools protocol with no
npm dependency): the account page of an MFA session long-polls through
/static/approval.js, the form sign-in's second step asks for approval
and shows the number and QR code, the number is typed with the keyboard
on the first device, and the second lands signed in. 360 px wide."""

import json
import shutil
import subprocess
from pathlib import Path

from conftest import REPO, USER_PASSWORD
from test_mfa_approval import mfa_user

SCRIPT = REPO / "tests" / "browser" / "approval.mjs"


def test_number_matching_in_the_browser(server, admin, tmp_path):
    node = shutil.which("node")
    assert node, "node is missing"
    assert Path("/usr/bin/chromium").exists(), "chromium is missing"
    uid, _, first = mfa_user(server, admin, "rita")
    env = {"GH_BASE": server.base, "GH_ORG": "acme",
           "GH_COOKIE": first.cookies.get("gh_session"), "GH_USER": "rita",
           "GH_PASSWORD": USER_PASSWORD, "GH_SHOTS": str(tmp_path),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    p = subprocess.run([node, "--experimental-websocket", "--no-warnings",
                        str(SCRIPT)], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert "error" not in out, out
    assert out["a_status"] == "No sign-in is waiting for approval.", out
    assert out["b_title"] == "Two-step verification", out
    assert 10 <= int(out["number"]) <= 99 and out["qr_loaded"] is True, out
    assert "127.0.0.1" in out["a_text"], out
    assert out["a_focused"] is True, out
    assert out["a_result"] == "Approved.", out
    assert out["b_url"] == "/o/acme/account" and out["b_user"] == "rita", out
    assert ("success", "mfa_approval") in [
        (r["result"], r["reason"]) for r in server.query(
            "SELECT result, reason FROM signin_events WHERE user_id = ?",
            (uid,))]
    for f in ("approver.png", "new-device.png", "new-device-signed-in.png"):
        assert (tmp_path / f).stat().st_size > 1000, f
