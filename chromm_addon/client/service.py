"""HTTP client for the reconstruction service (`python -m chromm_addon serve`), stdlib only."""

import json
import os
import shutil
import urllib.error
import urllib.request

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

    def _request(self, method, path, body=None, timeout=None):
        data = None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
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

    def submit(self, clips, **options):
        """Submit clips by path (a local service); returns the job status dict."""
        body = {"clips": [os.path.abspath(c) for c in clips]}
        body.update({k: v for k, v in options.items() if v is not None})
        return self._json("POST", "/jobs", body)

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


def _detail(exc):
    try:
        detail = json.loads(exc.read().decode()).get("detail")
    except (ValueError, AttributeError, OSError):
        detail = None
    if exc.code == 401:
        return "the backend refused the token (check the token in the add-on preferences)"
    return f"backend error {exc.code}: {detail or exc.reason}"
