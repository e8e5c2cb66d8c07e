"""Uploads streamed straight into a job's folder: each file is written once, where the job reads it.

The request body is parsed as it arrives with python-multipart's streaming `MultipartParser` (the
parser Starlette itself uses); Starlette's own form parsing would first spool every file to a
temporary file and the service would then copy it, writing each upload twice. Here each `files`
part goes to `<job>/uploads/<index>/<plain name>`, the `options` part (small) stays in memory,
and every limit (files per job, bytes per file) is enforced while the bytes come in.
"""

import dataclasses
import os

from .security import safe_filename

MULTIPART_OVERHEAD = 64 << 10   # bytes of part headers and boundaries allowed per file
OPTIONS_LIMIT = 64 << 10        # bytes of the `options` field

UPLOAD_SCHEMA = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object",
        "required": ["files"],
        "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                      "description": "one video per view"},
            "options": {"type": "string", "default": "{}",
                        "description": "JSON object of job options (as POST /jobs, without clips)"},
        },
    }}},
}


@dataclasses.dataclass
class Received:
    files: list      # [(path in the job folder, the file name the client gave)]
    options: str


class _Parts:
    """Callbacks for MultipartParser: one open file per `files` part, limits checked per chunk."""

    def __init__(self, folder, max_files, max_file_bytes):
        self.folder, self.max_files, self.max_file_bytes = folder, max_files, max_file_bytes
        self.files, self.options = [], None
        self._header_field, self._header_value, self._headers = b"", b"", {}
        self._out = self._name = self._field = None
        self._written = 0
        self._options = bytearray()

    def on_part_begin(self):
        self._headers, self._field, self._out = {}, None, None

    def on_header_field(self, data, start, end):
        self._header_field += data[start:end]

    def on_header_value(self, data, start, end):
        self._header_value += data[start:end]

    def on_header_end(self):
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def on_headers_finished(self):
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._field = params.get(b"name", b"").decode("latin-1")
        if self._field == "files":
            if len(self.files) >= self.max_files:
                raise _http(413, f"more than {self.max_files} files; this service takes at most "
                                 f"{self.max_files} clips")
            index = len(self.files)
            given = params.get(b"filename", b"").decode("utf-8", "replace") or f"clip{index}"
            name = safe_filename(given, f"clip{index}")
            target_dir = os.path.join(self.folder, str(index))
            os.makedirs(target_dir)
            path = os.path.join(target_dir, name)
            self._out = open(path, "xb")  # noqa: SIM115 - closed in on_part_end / close()
            self._name, self._written = os.path.basename(given.replace("\\", "/")) or name, 0
            self.files.append((path, self._name))
        elif self._field == "options":
            if self.options is not None:
                raise _http(422, "options: given more than once")
            self._options = bytearray()

    def on_part_data(self, data, start, end):
        chunk = data[start:end]
        if self._out is not None:
            self._written += len(chunk)
            if self._written > self.max_file_bytes:
                raise _http(413, f"{self._name}: upload over the limit of {self.max_file_bytes} bytes")
            self._out.write(chunk)
        elif self._field == "options":
            self._options += chunk
            if len(self._options) > OPTIONS_LIMIT:
                raise _http(413, f"options: over {OPTIONS_LIMIT} bytes")
        # other fields are ignored (their bytes are not kept)

    def on_part_end(self):
        if self._out is not None:
            self._out.close()
            self._out = None
            if self._written == 0:
                raise _http(400, f"{self._name}: the uploaded file is empty")
        elif self._field == "options":
            try:
                self.options = self._options.decode("utf-8")
            except UnicodeDecodeError:
                raise _http(422, "options: not UTF-8 text") from None

    def close(self):
        if self._out is not None:
            self._out.close()
            self._out = None


def _http(status, detail):
    from starlette.exceptions import HTTPException

    return HTTPException(status, detail)


async def receive_uploads(request, folder, max_files, max_file_bytes):
    """Stream a multipart request's `files` into `folder/<index>/<name>`; returns Received."""
    from python_multipart.multipart import MultipartParser, parse_options_header
    from starlette.concurrency import run_in_threadpool

    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise _http(422, "files: expected a multipart/form-data body with one or more `files`")
    os.makedirs(folder)
    parts = _Parts(folder, max_files, max_file_bytes)
    callbacks = {name: getattr(parts, name) for name in (
        "on_part_begin", "on_part_data", "on_part_end", "on_header_field", "on_header_value",
        "on_header_end", "on_headers_finished")}
    parser = MultipartParser(boundary, callbacks)
    try:
        async for chunk in request.stream():
            if chunk:
                try:
                    await run_in_threadpool(parser.write, chunk)  # file writes off the event loop
                except Exception as exc:  # noqa: BLE001 - the parser's own errors are the client's
                    if getattr(exc, "status_code", None):
                        raise
                    raise _http(400, f"files: not a valid multipart body ({exc})") from None
        parser.finalize()
    finally:
        parts.close()
    if not parts.files:
        raise _http(422, "files: no file uploaded (send one `files` part per view)")
    return Received(parts.files, parts.options or "{}")
