"""What a stranger costs the service (run by hand): bounded probes on loopback against a real `serve`.

    .venv/bin/python benchmarks/probe_service.py [ROOT]

ROOT is a checkout to start `serve` from (default: this one), so the same probes can be run
against an older version. Without the token it POSTs a 48 MiB multipart upload and a 256 MiB JSON
body on raw sockets and reports the answer, how much had been sent when it came, and the
service's resident memory before and after; then a request with `Host: evil.example`, and 50
connections that never finish their request head (how many the service closed after 15 s).
Results go to stdout; copy them into docs/backend.md with the machine they ran on.
"""

import json
import os
import socket
import subprocess
import sys
import time

MiB = 1 << 20


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    proc = subprocess.Popen([sys.executable, "-m", "chromm_addon", "serve", "--port", "0", "--tiny-network"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=root)
    try:
        port = json.loads(proc.stdout.readline())["port"]
        time.sleep(20)  # the network loads in the background; let memory settle
        before = _rss(proc.pid)
        for what, path, length, ctype in (
                ("48 MiB multipart upload", "/jobs/upload", 48 * MiB, "multipart/form-data; boundary=x"),
                ("256 MiB JSON body", "/jobs", 256 * MiB, "application/json")):
            status, sent, seconds = _post(port, path, length, ctype)
            print(f"{what}, no token: {status!r} after {sent} MiB sent, {seconds:.2f} s")
        print(f"service resident memory: {before} MB before, {_rss(proc.pid)} MB after")
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: evil.example\r\n\r\n")
            line = s.recv(4096).split(b"\r\n")[0].decode()
            print(f"Host: evil.example -> {line!r}")
        socks = []
        for _ in range(50):
            c = socket.create_connection(("127.0.0.1", port))
            c.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
            socks.append(c)
        time.sleep(15)
        closed = 0
        for c in socks:
            c.settimeout(0.01)
            try:
                closed += c.recv(10) == b""
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed += 1
            c.close()
        print(f"50 connections that never finish their head: {closed} closed by the service after 15 s")
    finally:
        proc.terminate()
        proc.wait(30)


def _rss(pid):
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) // 1024 for line in fh if line.startswith("VmRSS"))


def _post(port, path, length, ctype):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
              f"Content-Length: {length}\r\n\r\n".encode())
    sent, answer, t0 = 0, b"", time.monotonic()
    s.settimeout(0.05)
    while sent < length:
        try:
            answer = s.recv(4096)
            if answer:
                break
        except socket.timeout:
            pass
        try:
            s.sendall(b"[" * min(MiB, length - sent))
            sent += min(MiB, length - sent)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            break
    if not answer:
        s.settimeout(60)
        try:
            answer = s.recv(4096)
        except OSError:
            pass
    s.close()
    return answer.split(b"\r\n")[0].decode(), sent // MiB, time.monotonic() - t0


if __name__ == "__main__":
    main()
