#!/usr/bin/python3
"""oidc_client.py: a confidential OIDC client for the OIDC benchmarks.

    oidc_client.py PORT ORG PASSWORD

Signs in as `admin` (PASSWORD) on the Gatehouse server at 127.0.0.1:PORT,
creates an OIDC app in ORG allowed the client_credentials grant, sets its
client secret and requests one access token with it. Prints one line:
CLIENT_ID CLIENT_SECRET ACCESS_TOKEN. Used by bench/run.sh and bench/oidc.sh.
"""
import base64
import json
import sys
import urllib.request


def main():
    port, org, pw = sys.argv[1], sys.argv[2], sys.argv[3]
    base = f"http://127.0.0.1:{port}/o/{org}"

    def call(method, path, body=None, headers=None, form=None):
        data = json.dumps(body).encode() if body is not None else form
        req = urllib.request.Request(base + path, data=data, method=method,
                                     headers=headers or {})
        if body is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req) as r:
            return r.headers, r.read()

    h, b = call("POST", "/api/v1/session",
                {"username": "admin", "password": pw})
    cookie = h["Set-Cookie"].split(";")[0]
    auth = {"Cookie": cookie, "X-CSRF-Token": json.loads(b)["csrf_token"]}
    _, b = call("POST", "/api/v1/apps", {"name": "bench", "kind": "oidc"},
                auth)
    cid = json.loads(b)["id"]
    call("PUT", f"/api/v1/apps/{cid}/oidc",
         {"redirect_uris": ["https://rp.example/cb"],
          "grant_types": ["client_credentials"]}, auth)
    _, b = call("POST", f"/api/v1/apps/{cid}/oidc/secret", None, auth)
    secret = json.loads(b)["client_secret"]
    basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
    _, b = call("POST", "/oidc/token",
                headers={"Authorization": "Basic " + basic,
                         "Content-Type": "application/x-www-form-urlencoded"},
                form=b"grant_type=client_credentials")
    print(cid, secret, json.loads(b)["access_token"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
