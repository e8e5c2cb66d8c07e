"""The service against strangers, on loopback with bounded probes: a real `serve` process.

Refusals come before the body is read (raw sockets show the answer arrives while the client is
still sending, and the service's memory does not grow), the Host header is checked, nothing
crashes to 500, and connections that never finish their headers are closed.
"""

import json
import os
import socket
import time

import httpx
import pytest

from test_server import start_service, stop_service

MiB = 1 << 20


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    allowed = tmp_path_factory.mktemp("allowed")
    proc, hello = start_service("--allow-dir", str(allowed), "--tiny-network", "--max-upload-mb", "2",
                                "--max-clips", "2", "--header-timeout", "1.5", "--body-timeout", "2",
                                "--allow-host", "chromm.lan")
    client = httpx.Client(base_url=hello["url"], headers={"Authorization": f"Bearer {hello['token']}"},
                          timeout=30)
    deadline = time.monotonic() + 120  # the network loads in the background: wait, so memory is settled
    while client.get("/health").json()["network"] != "ready" and time.monotonic() < deadline:
        time.sleep(0.2)
    yield proc, hello, client, allowed
    client.close()
    stop_service(proc)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def raw_request(hello, head, body_chunks=(), timeout=10.0):
    """Send `head` then body chunks on a raw socket, stopping as soon as an answer arrives.
    Returns (answer bytes, body bytes sent before the answer)."""
    sock = socket.create_connection((hello["host"], hello["port"]), timeout=timeout)
    sock.setblocking(True)
    sent = 0
    try:
        sock.sendall(head)
        sock.settimeout(0.05)
        for chunk in body_chunks:
            try:
                answer = sock.recv(65536)
                if answer:
                    return answer + _rest(sock, timeout), sent
            except socket.timeout:
                pass
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                break  # closed by the service, or it is not reading
            sent += len(chunk)
        sock.settimeout(timeout)
        try:
            return sock.recv(65536) + _rest(sock, timeout), sent
        except socket.timeout:
            return b"", sent
    finally:
        sock.close()


def _rest(sock, timeout):
    sock.settimeout(1.0)
    data = b""
    try:
        while True:
            part = sock.recv(65536)
            if not part:
                break
            data += part
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def head(hello, method, path, length, extra=b"", content_type=b"application/json"):
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{hello['port']}\r\n".encode() + extra +
            b"Content-Type: " + content_type + b"\r\n" + f"Content-Length: {length}\r\n\r\n".encode())


def status_of(answer):
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def detail_of(answer):
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])["detail"]


def test_no_token_is_answered_before_the_body(guarded):
    proc, hello, _, _ = guarded
    before = rss_mb(proc.pid)
    # A 48 MiB multipart upload and a 256 MiB JSON body, as any web page could POST them to
    # 127.0.0.1: the 401 comes after the head, while the client still has almost all to send.
    for path, length, ctype in (("/jobs/upload", 48 * MiB, b"multipart/form-data; boundary=xyz"),
                                ("/jobs", 256 * MiB, b"application/json")):
        chunks = [b"[" * MiB] * (length // MiB)
        answer, sent = raw_request(hello, head(hello, "POST", path, length, content_type=ctype), chunks)
        assert status_of(answer) == 401, answer[:300]
        assert detail_of(answer) == "missing or wrong bearer token"
        assert b"connection: close" in answer.lower()
        assert sent < 8 * MiB, f"{sent} bytes sent before the answer to {path}"
    assert rss_mb(proc.pid) - before < 20


def test_size_limits_before_the_body(guarded):
    _, hello, _, _ = guarded
    auth = f"Authorization: Bearer {hello['token']}\r\n".encode()
    # 64 MiB declared against 2 clips x 2 MiB: 413 without reading it.
    answer, sent = raw_request(hello, head(hello, "POST", "/jobs/upload", 64 * MiB, auth,
                                           b"multipart/form-data; boundary=xyz"), [b"x" * MiB] * 64)
    assert status_of(answer) == 413 and "over this route's limit" in detail_of(answer)
    assert sent < 8 * MiB
    # A chunked JSON body with no length is cut once it passes the 1 MiB JSON limit.
    chunked = (f"POST /jobs HTTP/1.1\r\nHost: localhost\r\n".encode() + auth +
               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % (256 << 10) + b"[" * (256 << 10) + b"\r\n"
    answer, sent = raw_request(hello, chunked, [chunk] * 64)
    assert status_of(answer) == 413, answer[:300]
    assert sent < 8 * MiB


def test_host_header_is_checked(guarded):
    _, hello, client, _ = guarded
    for host in ("evil.example", "evil.example:8765", "localhost.evil.example", "", "[::1"):
        r = client.get("/health", headers={"Host": host})
        assert r.status_code == 400, (host, r.text)
        assert "Host header" in r.json()["detail"]
    for host in ("127.0.0.1", f"127.0.0.1:{hello['port']}", "localhost", "LOCALHOST:1", "[::1]:9",
                 "chromm.lan", "10.1.2.3"):
        assert client.get("/health", headers={"Host": host}).status_code == 200, host


def test_no_500_for_nul_bytes_and_deep_nesting(guarded):
    _, hello, client, allowed = guarded
    r = client.post("/jobs", json={"clips": [str(allowed / "a\0b.avi")]})
    assert r.status_code == 400 and "NUL byte" in r.json()["detail"], r.text
    deep = "[" * 100_000 + "]" * 100_000
    r = client.post("/jobs", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "nested" in r.json()["detail"], r.text
    r = client.post("/jobs", content='{"clips": ' + "[" * 5000 + "]" * 5000 + "}",
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and "nested" in r.json()["detail"], r.text
    files = [("files", ("a.avi", b"not a video", "video/x-msvideo"))]
    for options in ("[" * 60_000 + "]" * 60_000, "[" * 100 + "]" * 100, json.dumps({"fps": [[[[[[[[1]]]]]]]]})):
        r = client.post("/jobs/upload", files=files, data={"options": options})
        assert 400 <= r.status_code < 500, r.text
        assert isinstance(r.json()["detail"], str)
    assert client.get("/health").status_code == 200


def test_connections_that_never_finish_their_headers_are_closed(guarded):
    _, hello, client, _ = guarded
    socks = []
    try:
        for i in range(50):  # slowloris: a head that never ends
            s = socket.create_connection((hello["host"], hello["port"]), timeout=5)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow-%d: " % i)
            socks.append(s)
        idle = socket.create_connection((hello["host"], hello["port"]), timeout=5)  # sends nothing
        socks.append(idle)
        assert client.get("/health").status_code == 200  # still serving meanwhile
        deadline = time.monotonic() + 15
        closed = 0
        for s in socks:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                closed += s.recv(1024) == b""
            except ConnectionResetError:
                closed += 1
            except socket.timeout:
                pass
        assert closed == len(socks)
    finally:
        for s in socks:
            s.close()
    # A body that stalls is ended too.
    auth = f"Authorization: Bearer {hello['token']}\r\n".encode()
    answer, _ = raw_request(hello, head(hello, "POST", "/jobs", 100, auth), [b"{"])
    assert status_of(answer) == 408, answer[:300]
