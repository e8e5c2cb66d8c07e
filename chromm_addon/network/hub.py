"""Network weights from the Hugging Face hub: licences, download with resume, hash check.

The transfer is `huggingface_hub`'s own: `get_hf_file_metadata` (the HEAD call on
`{endpoint}/{repo}/resolve/{revision}/{file}`, giving the hub's hash, size and the download
location) and `file_download.http_get` (the streamed GET with Range resume and its own retries
after a dropped connection). `hf_hub_download` is not used because in huggingface_hub 2.4 it
writes to a per-process temporary name that it deletes on any failure, so a 5 GB download broken
at 90 % would start again from zero; here the partial file has a fixed name
(`.<file>.<hash>.part` beside the target) and the next run resumes it with a Range request.
A finished file is hashed (SHA-256 for LFS files, the git blob hash otherwise), compared with
the hub's, and only then renamed onto the target: a good file is never replaced by a bad one.

Importing this module needs neither torch nor huggingface_hub (the add-on reads `HUB_FILES` for
its licence checkboxes); `download_weights` imports huggingface_hub when called.
"""

import dataclasses
import hashlib
import json
import os
import re
import shutil
import time

from ..errors import ChrommError
from ..io.json_file import read_json_dict
from . import weights as w

ONLINE_ACCESS_OFF = ("online access is off: allow it in Blender's Preferences > System > Network "
                     "> Allow Online Access (or start Blender with --online-mode)")
MANIFEST = ".chromm-download.json"  # {kind: {"repo", "file", "sha256", "size", "commit"}}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclasses.dataclass(frozen=True)
class HubFile:
    kind: str
    repo_id: str
    filename: str
    target: str          # path inside the weights folder (what `find_weight_files` looks for)
    title: str
    licence: str
    licence_url: str
    approx_bytes: int


HUB_FILES = {
    "pi3x": HubFile("pi3x", "yyfz233/Pi3X", "model.safetensors", w.PI3X_FILES[0],
                    "Pi3X scene network", "CC BY-NC 4.0 (non-commercial)",
                    "https://creativecommons.org/licenses/by-nc/4.0/", 5_440_000_000),
    "multihmr": HubFile("multihmr", "naver/multiHMR_896_L", "multiHMR_896_L.pt", w.MULTIHMR_FILE,
                        "Multi-HMR human network", "NAVER Multi-HMR licence (non-commercial)",
                        "https://github.com/naver/multi-hmr/blob/main/LICENSE.txt", 1_290_000_000),
}


def licence_line(kind):
    f = HUB_FILES[kind]
    return f"{f.filename} ({f.title}, {f.repo_id}): {f.licence}, {f.licence_url}"


def format_bytes(n):
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


class ByteProgress:
    """Bytes done, rate and time left of one file; `callback(dict)` at most every `interval` s.

    Passed to huggingface_hub as its `tqdm_class` (a class it instantiates with tqdm's keyword
    arguments and feeds with `update(n)`), so no own transfer loop is needed to report progress.
    """

    def __init__(self, kind, callback, interval=0.5, clock=time.monotonic):
        self.kind, self.callback, self.interval, self.clock = kind, callback, interval, clock
        self.done = self.total = 0
        self._start_done = 0
        self._start = self._last = None

    def tqdm_class(self):
        outer = self

        class _Bar:
            def __init__(self, total=None, initial=0, **_ignored):
                outer.begin(total or 0, initial or 0)

            def update(self, n=1):
                outer.advance(n)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                outer.report(force=True)
                return False

            def close(self):
                pass

        return _Bar

    def begin(self, total, initial):
        self.total, self.done, self._start_done = int(total), int(initial), int(initial)
        self._start = self._last = self.clock()
        self.report(force=True)

    def advance(self, n):
        self.done += int(n)
        self.report()

    def snapshot(self):
        elapsed = (self.clock() - self._start) if self._start is not None else 0.0
        moved = self.done - self._start_done
        rate = moved / elapsed if elapsed > 0 and moved > 0 else None
        left = (self.total - self.done) / rate if rate and self.total else None
        return {"kind": self.kind, "done": self.done, "total": self.total,
                "rate": rate, "eta_s": None if left is None else max(0.0, left)}

    def report(self, force=False):
        now = self.clock()
        if self.callback and (force or self._last is None or now - self._last >= self.interval):
            self._last = now
            self.callback(self.snapshot())


def progress_line(p):
    from ..backend.progress import format_eta

    pct = f"{100 * p['done'] / p['total']:3.0f}%" if p["total"] else "   ?"
    rate = f"{p['rate'] / 1e6:.1f} MB/s" if p["rate"] else "-- MB/s"
    return (f"[{p['kind']}] {format_bytes(p['done'])} / {format_bytes(p['total'])} {pct}  "
            f"{rate}  {format_eta(p['eta_s'])} left")


def git_blob_sha1(path):
    """The git object id of a file (the hub's etag for files not stored in LFS)."""
    digest = hashlib.sha1(f"blob {os.path.getsize(path)}\0".encode())
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 23), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(path, etag, cache=True):
    """(ok, what was computed); SHA-256 is cached beside the file by size and mtime."""
    got = w.sha256_file(path, cache=cache) if _SHA256.match(etag) else git_blob_sha1(path)
    return got == etag, got


def read_manifest(folder):
    return read_json_dict(os.path.join(folder, MANIFEST))


def _write_manifest(folder, kind, entry):
    from ..io.atomic import atomic_output

    data = read_manifest(folder)
    data[kind] = entry
    with atomic_output(os.path.join(folder, MANIFEST), suffix=".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)


def _hub_error(hub_file, exc, token):
    """One line for what went wrong talking to the hub."""
    from huggingface_hub.errors import HfHubHTTPError

    where = f"{hub_file.repo_id}/{hub_file.filename}"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, HfHubHTTPError) and status in (401, 403):
        return (f"{where}: the hub refused {'the token' if token else 'access without a token'} "
                f"({status}); check the hub token, and accept the model's terms on its hub page "
                "if it asks for that")
    if isinstance(exc, HfHubHTTPError) and status == 404:
        return f"{where}: not found on the hub (404)"
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{where}: cannot reach the hub ({reason}); check the internet connection"


def download_weights(folder, accepted, kinds=("pi3x", "multihmr"), token=None, online_access=True,
                     progress=None, endpoint=None, revision="main", log=print):
    """Download the hub files `kinds` into `folder`; returns {kind: path}.

    `accepted`: the kinds whose licence the user accepted (each file needs its own). Files
    already there with the hub's hash are kept. `progress(dict)` gets bytes, rate and time left.
    """
    kinds = list(kinds)
    unknown = [k for k in kinds if k not in HUB_FILES]
    if unknown:
        raise ChrommError(f"{unknown[0]}: unknown weights file (choose from {', '.join(HUB_FILES)})")
    missing = [k for k in kinds if k not in set(accepted)]
    if missing:
        raise ChrommError("; ".join(f"{HUB_FILES[k].filename}: its licence is not accepted "
                                    f"({HUB_FILES[k].licence}, {HUB_FILES[k].licence_url}); "
                                    "tick it to download" for k in missing))
    if not online_access or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        raise ChrommError(f"{HUB_FILES[kinds[0]].repo_id}: {ONLINE_ACCESS_OFF}")
    folder = w.resolve_weights_dir(folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ChrommError(f"{folder}: cannot create the weights folder ({exc.strerror})") from None
    return {k: _download_one(HUB_FILES[k], folder, token, progress, endpoint, revision, log)
            for k in kinds}


def _download_one(hub_file, folder, token, progress, endpoint, revision, log):
    import httpx2
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    url = hf_hub_url(hub_file.repo_id, hub_file.filename, revision=revision, endpoint=endpoint)
    try:
        meta = get_hf_file_metadata(url, token=token, endpoint=endpoint)
    except (HfHubHTTPError, httpx2.HTTPError, OSError) as exc:
        raise ChrommError(_hub_error(hub_file, exc, token)) from None
    if not meta.etag or not meta.size:
        raise ChrommError(f"{url}: the hub gave no hash or size for this file")
    etag, size = meta.etag.lower(), int(meta.size)
    dest = os.path.join(folder, hub_file.target)
    entry = {"repo": hub_file.repo_id, "file": hub_file.filename, "hash": etag, "size": size,
             "commit": meta.commit_hash}
    if os.path.isfile(dest) and os.path.getsize(dest) == size and _matches(dest, etag)[0]:
        log(f"{hub_file.kind}: {dest} is already there with the hub's hash")
        _write_manifest(folder, hub_file.kind, entry)
        return dest
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    part = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.{etag[:16]}.part")
    have = os.path.getsize(part) if os.path.isfile(part) else 0
    if have > size:
        os.remove(part)
        have = 0
    free = shutil.disk_usage(os.path.dirname(dest)).free
    if free < size - have:
        raise ChrommError(f"{folder}: not enough disk space for {hub_file.filename} "
                          f"(needs {format_bytes(size - have)}, {format_bytes(free)} free); "
                          "free some space or choose another weights folder")
    log(f"{hub_file.kind}: downloading {hub_file.repo_id}/{hub_file.filename} "
        f"({format_bytes(size)}" + (f", resuming at {format_bytes(have)})" if have else ")"))
    headers = build_hf_headers(token=token)
    if _host(meta.location) != _host(url):
        headers.pop("authorization", None)  # a signed CDN link: the token stays with the hub
    bar = ByteProgress(hub_file.kind, progress)
    try:
        with open(part, "ab") as fh:
            http_get(meta.location, fh, resume_size=have, headers=headers, expected_size=size,
                     displayed_filename=hub_file.filename, tqdm_class=bar.tqdm_class())
    except (HfHubHTTPError, httpx2.HTTPError, OSError) as exc:
        done = os.path.getsize(part) if os.path.isfile(part) else 0
        if isinstance(exc, OSError) and not isinstance(exc, HfHubHTTPError) and exc.errno == 28:
            raise ChrommError(f"{folder}: the disk is full ({format_bytes(done)} of "
                              f"{hub_file.filename} kept; free space and download again to "
                              "resume)") from None
        if isinstance(exc, HfHubHTTPError):
            raise ChrommError(_hub_error(hub_file, exc, token)) from None
        raise ChrommError(f"{hub_file.repo_id}/{hub_file.filename}: download interrupted at "
                          f"{format_bytes(done)} of {format_bytes(size)} "
                          f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                          "download again to resume") from None
    ok, got = _matches(part, etag, cache=False)
    if not ok:
        os.remove(part)
        raise ChrommError(f"{hub_file.repo_id}/{hub_file.filename}: the downloaded file's hash "
                          f"{got[:12]}... differs from the hub's {etag[:12]}... (corrupted in "
                          "transfer); it was deleted, download again")
    os.replace(part, dest)
    if _SHA256.match(etag):
        w.remember_sha256(dest, got)  # the rename keeps size and mtime: hashed once
    _write_manifest(folder, hub_file.kind, entry)
    log(f"{hub_file.kind}: {dest} ({format_bytes(size)}, hash checked)")
    return dest


def _host(url):
    from urllib.parse import urlsplit

    return urlsplit(url).netloc
