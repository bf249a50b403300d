"""Fixtures for the black-box integration tests.

The suite drives the real binary, written against docs/api.md and
docs/cli.md only: `gatehouse init` into a temporary data directory, then
`gatehouse serve --dev` on a free loopback port. GATEHOUSE_BIN selects the
binary (default build/gatehouse); GATEHOUSE_SANITIZER=1 (set by
`make integration-asan`) makes every test also fail on a sanitizer report in
the server's or a CLI run's output.

Run with the Debian interpreter: /usr/bin/python3 -m pytest -q tests/integration
"""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
ORG = "acme"
ADMIN = "admin"
# Long, mixed and not a dictionary word: passes any sane default policy.
ADMIN_PASSWORD = "Quiet-Harbour-Lantern-2931!"
USER_PASSWORD = "Velvet-Compass-Orchard-8426?"
OTHER_PASSWORD = "Amber-Glacier-Pylon-5713#"
USER_AGENT = "gatehouse-integration/1.0 (pytest)"

SANITIZER = os.environ.get("GATEHOUSE_SANITIZER") == "1"
# The sanitizer build is several times slower.
SLOW = 4 if SANITIZER else 1
READY_TIMEOUT_S = 20 * SLOW
CLI_TIMEOUT_S = 30 * SLOW
STOP_TIMEOUT_S = 15 * SLOW

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "SUMMARY: AddressSanitizer",
    "ThreadSanitizer",
)


def sanitizer_report(text):
    """The first line of a sanitizer report in text, or None."""
    for line in text.splitlines():
        if any(m in line for m in SANITIZER_MARKERS):
            return line
    return None


def child_env(extra=None):
    """The environment for a gatehouse process: ours without any GATEHOUSE_*
    variable (GATEHOUSE_BIN is ours, not a config key), plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GATEHOUSE_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_http(port, data, timeout=10.0, host="127.0.0.1"):
    """Sends raw request bytes and reads until the server closes or the
    response is complete. Returns (status or None, headers dict lower-cased,
    body bytes). Status None means the connection closed without an answer.
    """
    s = socket.create_connection((host, port), timeout=timeout)
    chunks = []
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # The server may answer early and close: read what it sent.
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    return parse_http_response(b"".join(chunks))


def parse_http_response(raw):
    if not raw:
        return None, {}, b""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        return None, {}, raw
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = dechunk(body)
    return int(m.group(1)), headers, body


def dechunk(body):
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            n = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if n == 0:
            break
        out += rest[:n]
        body = rest[n + 2:]
    return out


def set_cookies(resp):
    """Every Set-Cookie header of a requests response, unjoined."""
    return resp.raw.headers.getlist("Set-Cookie")


def cookie_attrs(header):
    """Parses one Set-Cookie header: (name, value, {attr-lower: value})."""
    parts = [p.strip() for p in header.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip()
    return name.strip(), value.strip(), attrs


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels.items())): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                 m.group(3) or ""))
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def metric_sum(metrics, name, **labels):
    total = 0.0
    for (n, ls), v in metrics.items():
        if n != name:
            continue
        d = dict(ls)
        if all(d.get(k) == v2 for k, v2 in labels.items()):
            total += v
    return total


def error_of(resp):
    """The JSON error body, asserting the documented error shape."""
    assert resp.headers.get("Content-Type", "").startswith("application/json"), \
        f"error {resp.status_code} is not JSON: {resp.headers.get('Content-Type')} {resp.text[:300]!r}"
    body = resp.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert body.get("request_id"), body
    assert resp.headers.get("X-Request-Id") == body["request_id"], \
        (resp.headers.get("X-Request-Id"), body)
    return body


def expect_error(resp, status, code):
    assert resp.status_code == status, \
        f"expected {status} {code}, got {resp.status_code}: {resp.text[:500]!r}"
    body = error_of(resp)
    assert body["error"] == code, body
    return body


def normalise_list(value, key):
    """CLI --json output for a list: a JSON array, or an object holding
    one (docs/cli.md does not fix the shape)."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if isinstance(value.get(key), list):
            return value[key]
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
        if not lists:
            return [value]  # JSON Lines with a single line
    raise AssertionError(f"not a list of {key}: {value!r}")


def parse_cli_json(text, what=""):
    """CLI --json output: one JSON document, or JSON Lines (one object per
    line; docs/cli.md does not fix which), returned as a list."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as e:
        raise AssertionError(f"{what} --json printed no JSON: {text!r}") from e


class GatehouseError(AssertionError):
    pass


class Server:
    """One data directory and (optionally) a running `gatehouse serve`."""

    def __init__(self, binary, data_dir, workdir, org=ORG, admin=ADMIN,
                 admin_password=ADMIN_PASSWORD):
        self.binary = str(binary)
        self.data_dir = Path(data_dir)
        self.workdir = Path(workdir)
        self.org = org
        self.admin = admin
        self.admin_password = admin_password
        self.port = None
        self.proc = None
        self.log_path = None
        self._log_files = []
        self._starts = 0
        self.problems = []

    # ---- CLI -------------------------------------------------------------

    def cli(self, *args, env=None, check=True, data_dir=True, config=None,
            timeout=None):
        """Runs `gatehouse [--config F] ARGS` with --data-dir inserted after
        the command words. Returns the CompletedProcess (text)."""
        args = [str(a) for a in args]
        words = 2 if args and args[0] in ("org", "user", "group", "backup", "keys", "app",
                                           "audit") else 1
        cmd = [self.binary]
        if config is not None:
            cmd += ["--config", str(config)]
        cmd += args[:words]
        if data_dir and args and not args[0].startswith("-"):
            cmd += ["--data-dir", str(self.data_dir if data_dir is True else data_dir)]
        cmd += args[words:]
        return run_cli(cmd, env=env, check=check, timeout=timeout)

    def cli_json(self, *args, env=None):
        r = self.cli(*args, "--json", env=env)
        return parse_cli_json(r.stdout, args)

    def init(self, env_password=True, extra_args=(), env=None):
        e = dict(env or {})
        if env_password:
            e["GATEHOUSE_ADMIN_PASSWORD"] = self.admin_password
        return self.cli("init", "--org", self.org, "--admin", self.admin,
                        *extra_args, env=e)

    # ---- server ----------------------------------------------------------

    def start(self, extra_args=(), env=None, port=None, listen=True,
              config=None):
        assert self.proc is None, "already running"
        self.port = port or free_port()
        self._starts += 1
        self.log_path = self.workdir / f"serve-{self._starts}.log"
        out = open(self.log_path, "wb")
        self._log_files.append(out)
        cmd = [self.binary]
        if config is not None:
            cmd += ["--config", str(config)]
        cmd += ["serve", "--data-dir", str(self.data_dir)]
        if listen:
            cmd += ["--listen", f"127.0.0.1:{self.port}"]
        cmd += ["--dev", *extra_args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     env=child_env(env))
        self.wait_ready()
        return self

    def wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise GatehouseError(
                    f"gatehouse serve exited with {self.proc.returncode} "
                    f"before it was ready; log:\n{self.log()}")
            try:
                r = requests.get(f"{self.base}/readyz", timeout=2)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]!r}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill()
        raise GatehouseError(
            f"/readyz did not answer 200 within {READY_TIMEOUT_S}s "
            f"(last: {last}); log:\n{self.log()}")

    def log(self):
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def all_logs(self):
        return "".join(p.read_text(errors="replace")
                       for p in sorted(self.workdir.glob("serve-*.log")))

    def stop(self):
        """SIGTERM, wait; records a problem when the exit is unclean."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.problems.append(
                    f"serve did not exit within {STOP_TIMEOUT_S}s of SIGTERM")
        if p.returncode != 0:
            self.problems.append(f"serve exited with status {p.returncode}")
        rep = sanitizer_report(self.log())
        if rep:
            self.problems.append(f"sanitizer report: {rep}")
        return p.returncode

    def kill(self):
        """SIGKILL on purpose (durability tests): no exit check."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        p.kill()
        p.wait()

    def close(self):
        self.stop()
        for f in self._log_files:
            f.close()

    # ---- HTTP ------------------------------------------------------------

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def url(self, path):
        return self.base + path

    def api(self, path, org=None):
        return f"{self.base}/o/{org or self.org}/api/v1{path}"

    def new_session(self):
        s = requests.Session()
        s.headers["User-Agent"] = USER_AGENT
        return s

    def signin(self, username, password, org=None, session=None):
        """POST /session; returns the raw response."""
        s = session or self.new_session()
        return s.post(self.api("/session", org),
                      json={"username": username, "password": password},
                      timeout=30)

    def login(self, username=None, password=None, org=None):
        """Signs in and returns a requests.Session carrying the cookie and
        sending X-CSRF-Token on every request. Adds .csrf, .user,
        .cookie (the gh_session value) and .signin_body."""
        username = username or self.admin
        password = password or self.admin_password
        s = self.new_session()
        r = self.signin(username, password, org, session=s)
        assert r.status_code == 200, \
            f"sign-in as {username} failed: {r.status_code} {r.text[:300]!r}"
        body = r.json()
        s.csrf = body["csrf_token"]
        s.user = body["user"]
        s.signin_body = body
        s.cookie = s.cookies.get("gh_session")
        assert s.cookie, f"no gh_session cookie: {set_cookies(r)}"
        s.headers["X-CSRF-Token"] = s.csrf
        return s

    def bearer(self, token):
        s = self.new_session()
        s.headers["Authorization"] = f"Bearer {token}"
        return s

    def create_user(self, sess, username, password=None, expect=201, **fields):
        body = {"username": username, **fields}
        if password is not None:
            body["password"] = password
        r = sess.post(self.api("/users"), json=body, timeout=30)
        assert r.status_code == expect, \
            f"create {username}: {r.status_code} {r.text[:500]!r}"
        return r.json()

    def create_token(self, sess, name="test", days=None):
        body = {"name": name}
        if days is not None:
            body["expires_in_days"] = days
        r = sess.post(self.api("/tokens"), json=body, timeout=30)
        assert r.status_code == 201, f"{r.status_code} {r.text[:500]!r}"
        return r.json()

    def metrics(self):
        r = requests.get(self.url("/metrics"), timeout=10)
        assert r.status_code == 200, r.text[:300]
        return parse_metrics(r.text)

    # ---- databases -------------------------------------------------------

    def directory_db(self):
        return self.data_dir / "directory.db"

    def org_row(self, slug=None):
        c = db_connect(self.directory_db())
        try:
            row = c.execute("SELECT * FROM orgs WHERE slug = ?",
                            (slug or self.org,)).fetchone()
        finally:
            c.close()
        assert row is not None, f"org {slug or self.org} not in directory.db"
        return row

    def tenant_db(self, slug=None):
        row = self.org_row(slug)
        path = self.data_dir / row["region"] / f"{row['id']}.db"
        assert path.exists(), f"tenant database {path} missing"
        return path

    def query(self, sql, params=(), slug=None, db=None):
        """Runs one statement and returns the rows as dicts. A plain
        database file (db, e.g. directory.db) is read with sqlite3; an
        org's tenant database is encrypted, so it goes through
        `gatehouse db sql` with the org's keys (--write for statements
        that change it)."""
        if db is not None:
            c = db_connect(db)
            try:
                rows = [dict(r) for r in c.execute(sql, params).fetchall()]
                c.commit()
                return rows
            finally:
                c.close()
        head = sql.lstrip().split(None, 1)[0].upper()
        write = head not in ("SELECT", "PRAGMA", "WITH", "EXPLAIN")
        args = ["db", "sql", "--org", slug or self.org,
                "--params", json.dumps(list(params))]
        if write:
            args.append("--write")
        r = self.cli(*args, sql)
        return json.loads(r.stdout)


def db_connect(path):
    c = sqlite3.connect(str(path), timeout=10)
    c.row_factory = sqlite3.Row
    return c


def run_cli(cmd, env=None, check=True, timeout=None):
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, env=child_env(env),
                           timeout=timeout or CLI_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise GatehouseError(f"{cmd} did not finish within its timeout") from e
    rep = sanitizer_report(r.stderr) or sanitizer_report(r.stdout)
    if rep:
        raise GatehouseError(f"{cmd}: sanitizer report: {rep}\n{r.stderr}")
    if check and r.returncode != 0:
        raise GatehouseError(
            f"{cmd} exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r


@pytest.fixture(scope="session")
def gatehouse_bin():
    path = Path(os.environ.get("GATEHOUSE_BIN") or REPO / "build" / "gatehouse")
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.exit(f"gatehouse binary not found at {path}: build it with "
                    f"`make` or point GATEHOUSE_BIN at it", returncode=1)
    return path


@pytest.fixture
def server_factory(gatehouse_bin, tmp_path):
    """Makes Server objects on fresh data directories; stops them all at the
    end and fails the test on an unclean exit or a sanitizer report."""
    made = []

    def make(org=ORG, admin=ADMIN, admin_password=ADMIN_PASSWORD,
             init=True, start=True, name=None, serve_env=None,
             serve_args=()):
        n = name or f"gh{len(made)}"
        work = tmp_path / n
        work.mkdir()
        srv = Server(gatehouse_bin, work / "data", work, org, admin,
                     admin_password)
        made.append(srv)
        if init:
            srv.init()
        if start:
            srv.start(extra_args=serve_args, env=serve_env)
        return srv

    yield make
    problems = []
    for srv in made:
        srv.close()
        problems += srv.problems
    if problems:
        logs = "\n".join(s.all_logs()[-4000:] for s in made)
        pytest.fail("server problems: " + "; ".join(problems) +
                    f"\nserver log tail:\n{logs}")


@pytest.fixture
def server(server_factory):
    """An initialised data directory with org acme (owner admin) and a
    running `gatehouse serve --dev` on a free loopback port."""
    return server_factory()


@pytest.fixture
def admin(server):
    """The signed-in owner's requests.Session (cookie + X-CSRF-Token)."""
    return server.login()
