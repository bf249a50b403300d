"""TLS from the configuration file: modern versions only, HSTS, Secure cookies."""

import signal
import socket
import ssl
import subprocess
import time

import pytest
import requests

from conftest import (ADMIN, ADMIN_PASSWORD, READY_TIMEOUT_S, child_env,
                      free_port, sanitizer_report)


@pytest.fixture
def tls_server(server_factory, tmp_path):
    srv = server_factory(start=False)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    conf = tmp_path / "gatehouse.conf"
    conf.write_text(f"# TLS test\nlisten = 127.0.0.1:{port}\n"
                    f"tls_cert = {cert}\ntls_key = {key}\n")
    log = open(tmp_path / "tls-serve.log", "wb")
    proc = subprocess.Popen([srv.binary, "--config", str(conf), "serve",
                             "--data-dir", str(srv.data_dir)],
                            stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=child_env())
    base = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        assert proc.poll() is None, (tmp_path / "tls-serve.log").read_text()
        try:
            if requests.get(base + "/readyz", verify=str(cert),
                            timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "TLS server never became ready"
        time.sleep(0.1)
    yield base, cert, port
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    log.close()
    text = (tmp_path / "tls-serve.log").read_text(errors="replace")
    assert sanitizer_report(text) is None, text


def test_tls_sign_in_sets_hsts_and_secure_cookie(tls_server):
    base, cert, _ = tls_server
    r = requests.post(base + "/o/acme/api/v1/session", verify=str(cert),
                      json={"username": ADMIN, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    cookie = r.headers["Set-Cookie"]
    assert "gh_session=" in cookie and "; Secure" in cookie
    assert "; HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_refuses_versions_below_1_2(tls_server):
    _, cert, port = tls_server
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(cert))
    # Lower the client's own floor so that the refusal is the server's.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1

    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with pytest.raises(ssl.SSLError):
            with ctx.wrap_socket(s, server_hostname="127.0.0.1"):
                pass
    ctx12 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx12.load_verify_locations(str(cert))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx12.wrap_socket(s, server_hostname="127.0.0.1") as t:
            assert t.version() in ("TLSv1.2", "TLSv1.3")


def test_plain_http_off_loopback_is_refused_naming_the_key(server_factory):
    srv = server_factory(start=False)
    r = subprocess.run([srv.binary, "serve", "--data-dir", str(srv.data_dir),
                        "--listen", f"0.0.0.0:{free_port()}"],
                       capture_output=True, text=True, timeout=30,
                       env=child_env(), stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert "listen" in r.stderr and "loopback" in r.stderr
