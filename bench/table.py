#!/usr/bin/python3
"""table.py: prints the benchmark table from run.sh's measurements file.

    table.py MEASUREMENTS

MEASUREMENTS holds key=value lines written by bench/run.sh. The table is
Markdown: scenario | req/s | p50 | p99 | errors | RSS | reference | ratio |
goal met?. Every reference was measured in the same run; RSS is in MB
(10^6 bytes), read from /proc/PID/status.
"""
import statistics
import sys


def load(path):
    m = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                m[k] = v
    return m


def num(m, k):
    v = m.get(k, "")
    try:
        return float(v)
    except ValueError:
        return None


def ms(us):
    if us is None:
        return "-"
    return f"{us / 1000:.2f} ms"


def mb(kb):
    if kb is None:
        return "-"
    return f"{kb * 1024 / 1e6:.1f} MB"


def rps(v):
    return "-" if v is None else f"{v:,.0f}"


def errs(v):
    return "-" if v is None else f"{v:.0f}"


def verdict(ok, goal):
    if ok is None:
        return f"? ({goal}: not measured)"
    return f"yes ({goal})" if ok else f"**NO** ({goal})"


def main():
    if len(sys.argv) != 2:
        print("usage: table.py MEASUREMENTS", file=sys.stderr)
        return 2
    m = load(sys.argv[1])
    rows = []

    def load_row(key, name):
        return [name, rps(num(m, key + "_rps")), ms(num(m, key + "_p50_us")),
                ms(num(m, key + "_p99_us")), errs(num(m, key + "_errors")),
                mb(num(m, key + "_rss_kb"))]

    # The ceiling ran twice (before and after Gatehouse's runs): the
    # better run is the reference.
    c1, c2 = num(m, "ceiling1_rps"), num(m, "ceiling2_rps")
    best = "ceiling2" if (c2 or 0) > (c1 or 0) else "ceiling1"
    ceiling = num(m, best + "_rps")
    other = c1 if best == "ceiling2" else c2
    rows.append(load_row(best, "bare libmicrohttpd GET /healthz (the "
                         "ceiling; better of 2 runs)") + [
        f"other run {rps(other)} req/s", "-", "(reference)"])

    for key, name in (("healthz", "GET /healthz"),
                      ("me1", "GET /o/acme/api/v1/me with a session "
                       "cookie (1 org)")):
        r = num(m, key + "_rps")
        ratio = r / ceiling if r and ceiling else None
        rows.append(load_row(key, name) + [
            f"ceiling {rps(ceiling)} req/s",
            "-" if ratio is None else f"{ratio:.0%}",
            verdict(None if ratio is None else ratio >= 0.70, ">= 70 %")])

    ncpu = num(m, "ncpu")
    # argon2id was timed before and after the sign-in run: the faster
    # median gives the (higher, stricter) limit.
    a_before, a_after = num(m, "argon2_ms_before"), num(m, "argon2_ms_after")
    a_ms = min(x for x in (a_before, a_after, float("inf")) if x)
    a_ms = None if a_ms == float("inf") else a_ms
    limit = ncpu / (a_ms / 1000) if ncpu and a_ms else None
    r = num(m, "signin_rps")
    ratio = r / limit if r and limit else None
    # Beside the goal: the hashes per second all cores managed together
    # (argon2_time with one thread per core), the limit the machine shows.
    par_rate = num(m, "argon2_parallel_rate")
    par = (f"; {ncpu:.0f} hashes at once: {par_rate:.1f}/s, sign-in "
           f"{r / par_rate:.0%} of that" if par_rate and r and ncpu else "")
    rows.append(load_row("signin", "POST /o/acme/api/v1/session, password "
                         f"sign-in, argon2id {m.get('argon2_params', '?')}, "
                         f"{int(num(m, 'signin_sessions_created') or 0):,} "
                         "sessions created") + [
        f"hash-bound {ncpu:.0f} cores / {a_ms:.1f} ms = {limit:.1f} req/s "
        f"(argon2id median {a_before:.1f} ms before, {a_after:.1f} ms after)"
        f"{par}" if limit else "-",
        "-" if ratio is None else f"{ratio:.0%}",
        verdict(None if ratio is None else ratio >= 0.95, ">= 95 %")])

    rows.append(["RSS under load (VmHWM after the 3 Gatehouse runs "
                 "above)", "-", "-", "-", "-", mb(num(m, "load_hwm_kb")),
                 "-", "-", "(no goal)"])
    rows.append(["idle RSS, 1 org", "-", "-", "-", "-",
                 mb(num(m, "idle1_rss_kb")), "-", "-", "(no goal)"])
    kb = num(m, "idle100_rss_kb")
    limit_kb = 16e6 / 1024
    rows.append(["idle RSS, 100 orgs (each org's database opened once)",
                 "-", "-", "-", "-", mb(kb), "16.0 MB",
                 "-" if kb is None else f"{kb / limit_kb:.0%}",
                 verdict(None if kb is None else kb <= limit_kb,
                         "<= 16 MB")])
    rows.append([f"idle RSS, {m.get('orgs', '?')} orgs (each opened once)",
                 "-", "-", "-", "-", mb(num(m, "idle1000_rss_kb")), "-", "-",
                 "(no goal)"])

    cold = [float(x) for x in m.get("cold_ms", "").split()]
    if cold:
        med = statistics.median(cold)
        rows.append([f"cold start to first 200 on /readyz (median of "
                     f"{len(cold)}; p99 column: slowest)", "-",
                     f"{med:.1f} ms", f"{max(cold):.1f} ms", "-", "-",
                     "100 ms", f"{med / 100:.0%}",
                     verdict(med <= 100, "<= 100 ms")])

    p1 = num(m, "me1_p99_us")
    p1000 = num(m, "me1000_p99_us")
    change = p1000 / p1 - 1 if p1 and p1000 else None
    rows.append(load_row("me1000", f"GET /me with a session cookie, "
                         f"{m.get('orgs', '?')} orgs (all opened once)") + [
        f"p99 with 1 org {ms(p1)}",
        "-" if change is None else f"p99 {change:+.0%}",
        verdict(None if change is None else change <= 0.20,
                "p99 change <= +20 %")])

    # Field encryption: the kms API against raw AES-256-GCM (openssl
    # speed, one core) at the same value size. Bytes/s of plaintext.
    for size in (64, 4096):
        ref_kbps = m.get(f"openssl{size}_kbps")
        for op in ("enc", "dec"):
            ops = m.get(f"kms{size}_{op}_ops")
            if ops is None or ref_kbps is None:
                continue
            ops = float(ops)
            mbps = ops * size / 1e6
            ref = float(ref_kbps) * 1000 / 1e6
            ratio = mbps / ref if ref else None
            rows.append([
                f"field {'encryption' if op == 'enc' else 'decryption'}, "
                f"{size} B values (gh_kms, AAD-bound)",
                rps(ops), "-", "-", "-", "-",
                f"openssl speed aes-256-gcm {size} B: {ref:,.0f} MB/s "
                f"(kms {mbps:,.0f} MB/s)",
                "-" if ratio is None else f"{ratio:.0%}",
                verdict(None if ratio is None else ratio >= 0.80,
                        ">= 80 %")])

    # OpenID Connect: discovery and introspection against the ceiling,
    # client-credentials issuance against oidc-provider (npm), measured
    # with the same wrk settings in the same run.
    r = num(m, "discovery_rps")
    ratio = r / ceiling if r and ceiling else None
    rows.append(load_row("discovery", "OIDC discovery (GET /o/acme/"
                         ".well-known/openid-configuration)") + [
        f"ceiling {rps(ceiling)} req/s",
        "-" if ratio is None else f"{ratio:.0%}",
        verdict(None if ratio is None else ratio >= 0.70, ">= 70 %")])

    peer = f"oidc-provider {m.get('peer_version', '?')} (npm, 1 node process)"
    p_cc, p_in = num(m, "peer_cc_rps"), num(m, "peer_introspect_rps")
    r = num(m, "introspect_rps")
    ratio = r / ceiling if r and ceiling else None
    vs_peer = r / p_in if r and p_in else None
    rows.append(load_row("introspect", "token introspection (POST "
                         "/o/acme/oidc/introspect, a JWT access token, "
                         "client_secret_basic)") + [
        f"ceiling {rps(ceiling)} req/s; {peer} {rps(p_in)} req/s "
        "(opaque token: it cannot introspect JWTs)",
        ("-" if ratio is None else f"{ratio:.0%}") +
        ("" if vs_peer is None else f"; {vs_peer:.2f}x peer"),
        verdict(None if ratio is None else ratio >= 0.70,
                ">= 70 % of ceiling")])

    r = num(m, "cc_rps")
    ratio = r / p_cc if r and p_cc else None
    rows.append(load_row("cc", "client-credentials token issuance (POST "
                         f"/o/acme/oidc/token, JWT {m.get('oidc_alg', '?')},"
                         " client_secret_basic)") + [
        f"{peer} {rps(p_cc)} req/s (JWT {m.get('peer_alg', '?')})",
        "-" if ratio is None else f"{ratio:.2f}x",
        verdict(None if ratio is None else ratio >= 10,
                ">= 10x oidc-provider")])
    rows.append(load_row("peer_cc", f"{peer}: client-credentials "
                         f"issuance (JWT {m.get('peer_alg', '?')})") + [
        "-", "-", "(reference)"])
    rows.append(load_row("peer_introspect", f"{peer}: introspection "
                         "(opaque token)") + ["-", "-", "(reference)"])

    head = ["scenario", "req/s", "p50", "p99", "errors", "RSS",
            "reference", "ratio", "goal met?"]
    widths = [max(len(str(r[i])) for r in rows + [head])
              for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w)
                                 for c, w in zip(cells, widths)) + " |"

    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print()
    print(f"wrk {m.get('wrk_args', '?')} on the same {ncpu:.0f} cores as "
          "the server; errors = responses >= 400 + socket errors; RSS of "
          "load rows = peak VmRSS sampled every 0.2 s. Load average "
          f"before the run: {m.get('loadavg_start', '?')} (other work on "
          "the machine skews every figure). Figures are for this machine "
          "and this run only.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
