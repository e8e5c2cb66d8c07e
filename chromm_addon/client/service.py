"""HTTP client for the reconstruction service (`python -m chromm_addon serve`), stdlib only."""

import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
import uuid

from ..errors import ChrommError
from ..io.atomic import atomic_output


class ServiceError(ChrommError):
    """The service answered with an error, or could not be reached."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class ServiceClient:
    """One service, one bearer token. Every call raises ServiceError with a one-line message."""

    def __init__(self, url, token, timeout=10.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(self, method, path, body=None, timeout=None, data=None, headers=None):
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                   **(headers or {})}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as exc:
            raise ServiceError(_detail(exc), status=exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceError(f"backend at {self.url} is unreachable ({reason})") from None

    def _json(self, method, path, body=None):
        with self._request(method, path, body) as resp:
            return json.loads(resp.read().decode() or "null")

    def health(self):
        return self._json("GET", "/health")

    def version(self):
        return self._json("GET", "/version")

    def submit(self, clips, progress=None, **options):
        """Submit a job; returns its status dict. Clips go by path when the service reads paths
        and runs on this machine (a loopback URL), else they are uploaded (`progress(sent, total)`).
        A path the service refuses (403: outside its allowed folders) is uploaded instead."""
        if self.version().get("accepts_paths") and self.is_loopback():
            try:
                return self.submit_paths(clips, **options)
            except ServiceError as exc:
                if exc.status != 403:
                    raise
        return self.submit_upload(clips, progress=progress, **options)

    def is_loopback(self):
        host = urllib.parse.urlsplit(self.url).hostname or ""
        return host in ("localhost", "::1") or host.startswith("127.")

    def submit_paths(self, clips, **options):
        body = {"clips": [os.path.abspath(c) for c in clips]}
        body.update({k: v for k, v in options.items() if v is not None})
        return self._json("POST", "/jobs", body)

    def submit_upload(self, clips, progress=None, **options):
        """POST /jobs/upload: the clips streamed from disk as multipart/form-data (never whole
        in memory), `progress(bytes sent, bytes total)` as they go."""
        body = MultipartBody({"options": json.dumps({k: v for k, v in options.items()
                                                     if v is not None})},
                             [("files", c) for c in clips], progress)
        headers = {"Content-Type": body.content_type, "Content-Length": str(len(body))}
        try:
            with self._request("POST", "/jobs/upload", data=body, headers=headers,
                               timeout=max(self.timeout, 300)) as resp:
                return json.loads(resp.read().decode() or "null")
        finally:
            body.close()

    def status(self, job_id):
        return self._json("GET", f"/jobs/{job_id}")

    def jobs(self):
        return self._json("GET", "/jobs")

    def cancel(self, job_id):
        return self._json("POST", f"/jobs/{job_id}/cancel")

    def delete(self, job_id):
        return self._json("DELETE", f"/jobs/{job_id}")

    def download_take(self, job_id, dest):
        """Write the job's take file to `dest` atomically; returns dest."""
        return self._download(f"/jobs/{job_id}/take", dest)

    def download_views(self, job_id, dest):
        """Write the job's views file (what Refine re-fuses) to `dest` atomically; returns dest."""
        return self._download(f"/jobs/{job_id}/views", dest)

    def _download(self, route, dest):
        with self._request("GET", route, timeout=max(self.timeout, 120)) as resp, \
                atomic_output(dest, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                shutil.copyfileobj(resp, fh, 1 << 20)
        return dest


class MultipartBody:
    """multipart/form-data read piece by piece: form fields, then each file from disk.

    urllib sends a file-like `data` with its Content-Length in blocks, so a 4 GB clip is never
    held in memory; `progress(sent, total)` runs after each block (it may raise to abort).
    """

    def __init__(self, fields, files, progress=None):
        self.boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        self.progress = progress
        self._parts = []   # bytes, or (path, size)
        for name, value in fields.items():
            self._parts.append(self._head(name) + b"\r\n" + value.encode() + b"\r\n")
        for name, path in files:
            filename = os.path.basename(path).replace('"', "_")
            self._parts.append(self._head(name, filename) +
                               b"Content-Type: application/octet-stream\r\n\r\n")
            self._parts.append((path, os.path.getsize(path)))
            self._parts.append(b"\r\n")
        self._parts.append(f"--{self.boundary}--\r\n".encode())
        self.total = sum(p[1] if isinstance(p, tuple) else len(p) for p in self._parts)
        self.sent = 0
        self._file = None

    def _head(self, name, filename=None):
        extra = f'; filename="{filename}"' if filename is not None else ""
        return (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{extra}\r\n"
                .encode())

    def __len__(self):
        return self.total

    def read(self, size=-1):
        size = 1 << 20 if size is None or size < 0 else size
        while self._parts:
            part = self._parts[0]
            if isinstance(part, tuple):
                if self._file is None:
                    self._file = open(part[0], "rb")
                chunk = self._file.read(size)
                if chunk:
                    return self._advance(chunk)
                self._file.close()
                self._file = None
                self._parts.pop(0)
            else:
                chunk, rest = part[:size], part[size:]
                if rest:
                    self._parts[0] = rest
                else:
                    self._parts.pop(0)
                return self._advance(chunk)
        return b""

    def _advance(self, chunk):
        self.sent += len(chunk)
        if self.progress is not None:
            self.progress(self.sent, self.total)
        return chunk

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def _detail(exc):
    try:
        detail = json.loads(exc.read().decode()).get("detail")
    except (ValueError, AttributeError, OSError):
        detail = None
    if exc.code == 401:
        return "the backend refused the token (check the token in the add-on preferences)"
    return f"backend error {exc.code}: {detail or exc.reason}"
