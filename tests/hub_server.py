"""A small local stand-in for the Hugging Face hub, in the hub's URL layout (for `HF_ENDPOINT`).

What huggingface_hub 2.4 calls to download one file (read from its `file_download.py`):

1. `HEAD {endpoint}/{repo_id}/resolve/{revision}/{filename}` without following redirects to
   another origin. For an LFS file the hub answers 302 with `Location` (a signed URL on the CDN,
   another origin), `X-Repo-Commit` (40 hex), `X-Linked-Etag` (the file's SHA-256, quoted) and
   `X-Linked-Size`. 401 for a refused token, 404 for an unknown file.
2. `GET {Location}`, with `Range: bytes=N-` when resuming; answered 200 or 206 with
   `Content-Range`.

Two real HTTP servers on loopback play the hub and the CDN (different ports, so different
origins, as on the real hub). Knobs: `drop_after` (the next GET of a file sends this many bytes
and closes the connection), `throttle` (seconds between 64 kB pieces: a slow link),
`corrupt` (serve different bytes than the hash announced),
`token` (required bearer token). Every request is logged in `requests`.
"""

import hashlib
import http.server
import threading
import time

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head):
        hub = self.server.hub
        hub.requests.append((self.server.role, self.command, self.path, self.headers.get("Range"),
                             self.headers.get("Authorization")))
        if self.server.role == "hub":
            self._resolve(hub)
        else:
            self._cdn(hub, head)

    def _resolve(self, hub):
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._send(404, b'{"error": "not found"}')
        repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
        if hub.token and self.headers.get("Authorization") != f"Bearer {hub.token}":
            return self._send(401, b'{"error": "Invalid credentials in Authorization header"}')
        data = hub.files.get((repo, filename))
        if data is None:
            return self._send(404, b'{"error": "Entry not found"}', {"X-Error-Code": "EntryNotFound",
                                                                      "X-Repo-Commit": COMMIT})
        sha = hashlib.sha256(data).hexdigest()
        self._send(302, b"", {"Location": f"{hub.cdn_url}/repos/{sha}?sig=x",
                              "X-Repo-Commit": COMMIT, "X-Linked-Etag": f'"{sha}"',
                              "X-Linked-Size": str(len(data)), "ETag": '"0000"'})

    def _cdn(self, hub, head):
        sha = self.path.split("?")[0].rsplit("/", 1)[-1]
        data = next((d for d in hub.files.values() if hashlib.sha256(d).hexdigest() == sha), None)
        if data is None:
            return self._send(404, b"no such object")
        if hub.corrupt:
            data = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
        body = data[start:]
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self.send_response(206 if start else 200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        drop, hub.drop_after = hub.drop_after, None
        if hub.throttle:  # slow link: 64 kB every `throttle` seconds
            for i in range(0, len(body), 1 << 16):
                self.wfile.write(body[i:i + (1 << 16)])
                self.wfile.flush()
                time.sleep(hub.throttle)
            return
        if drop is not None:
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def _send(self, status, body, headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class LocalHub:
    """`with LocalHub({(repo, filename): bytes}) as hub:` ... `hub.url` is the HF_ENDPOINT."""

    def __init__(self, files, token=None):
        self.files = dict(files)
        self.token = token
        self.drop_after = None
        self.throttle = 0.0
        self.corrupt = False
        self.requests = []
        self._servers = []

    def __enter__(self):
        for role in ("hub", "cdn"):
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            server.hub, server.role = self, role
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)
        self.url = f"http://127.0.0.1:{self._servers[0].server_address[1]}"
        self.cdn_url = f"http://127.0.0.1:{self._servers[1].server_address[1]}"
        return self

    def __exit__(self, *exc):
        for server in self._servers:
            server.shutdown()
            server.server_close()
