"""Slow clients are cut off by the connection timeout; others are served."""

import socket

import pytest
import requests


@pytest.mark.slow
def test_stalled_request_is_closed_while_others_are_served(server_factory):
    srv = server_factory(serve_env={"GATEHOUSE_CONNECTION_TIMEOUT_S": "1"})
    stalled = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
        # Half a request: the headers never end.
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        stalled.append(s)
    try:
        r = requests.get(srv.url("/healthz"), timeout=10)
        assert r.status_code == 200
        for s in stalled:
            # The server closes each stalled connection (EOF), without
            # ever answering the half request with a 200.
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            assert b" 200 " not in data
    finally:
        for s in stalled:
            s.close()
    assert requests.get(srv.url("/healthz"), timeout=10).status_code == 200
