"""The HTTP service (FastAPI): submit, follow, cancel and download reconstructions.

Every route, the OpenAPI schema included, needs `Authorization: Bearer <token>`: the token, the
Host header and the body size are checked by `guard.Guard` (an ASGI middleware) before any byte of
a body is read. Errors are JSON `{"detail": "<one line naming the problem>"}` with a 4xx status.
"""

import json
import os
from typing import List

from .. import __version__
from ..errors import ChrommError
from ..options import SERVICE, ReconstructOptions, from_dict, leaves, strip_none
from .jobs import DONE, QueueFull
from .limits import MAX_CLIPS
from .security import AllowedRoots
from .timeline import open_clips, plan_timeline

API_VERSION = 1
MAX_JSON_DEPTH = 32  # nesting of a request's JSON (options are at most 3 deep)


def create_app(queue, token, allowed=None, max_upload_bytes=4 << 30, max_clips=MAX_CLIPS,
               network="weights", device="cpu", gpu=None, hosts=(), body_timeout=None):
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from .guard import BODY_TIMEOUT_S, JSON_BODY_LIMIT, Guard
    from .models import Deleted, Health, JobOptions, JobStatus, PathJob, Version
    from .uploads import MULTIPART_OVERHEAD, UPLOAD_SCHEMA, receive_uploads

    allowed = allowed or AllowedRoots()
    app = FastAPI(title="CHROMM reconstruction service", version=__version__, openapi_url=None,
                  docs_url=None, redoc_url=None)
    upload_limit = max_upload_bytes * max_clips + MULTIPART_OVERHEAD * max_clips
    app.add_middleware(Guard, token=token, hosts=hosts, body_timeout=body_timeout or BODY_TIMEOUT_S,
                       body_limit=lambda path, method: upload_limit if path == "/jobs/upload" else JSON_BODY_LIMIT)

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc):
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, status_code=422)

    @app.exception_handler(ChrommError)
    async def _chromm(request, exc):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc):
        if isinstance(exc.__cause__, RecursionError):  # FastAPI's JSON body parsing hit the C stack limit
            return await _too_deep(request, exc.__cause__)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RecursionError)
    async def _too_deep(request, exc):
        return JSONResponse({"detail": f"request: JSON nested more than {MAX_JSON_DEPTH} levels deep"},
                            status_code=422)

    @app.exception_handler(Exception)
    async def _internal(request, exc):  # never a traceback or a server path to the client
        import sys

        print(f"{request.method} {request.url.path}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the service's log"},
                            status_code=500)

    def _job_or_404(job_id):
        job = queue.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job

    def _check_and_submit(options, job_id=None, folder=None, upload_folder=None, sources=None, aliases=None):
        if len(options.clips) > max_clips:
            raise ChrommError(f"{len(options.clips)} clips; this service takes at most {max_clips}")
        # Open every clip now, so bad input is answered at once rather than as a failed job.
        clips, offsets = open_clips(options.clips, options.offsets, options.image_fps)
        plan_timeline(clips, offsets, options.fps, options.start, options.end)
        if options.cameras is not None:    # known cameras checked against the clips now, too
            from .known_cameras import prepare

            prepare(options.cameras, clips)
        try:
            return queue.submit(options, job_id=job_id, folder=folder, upload_folder=upload_folder,
                                sources=sources, aliases=aliases)
        except QueueFull as exc:
            raise HTTPException(429, str(exc)) from None

    def _options(body, clips):
        """The job's options: the service's own (device, weights, ...) and the request's."""
        template = queue.runner_options
        base = ReconstructOptions()
        for leaf in leaves(ReconstructOptions, (SERVICE,)):
            leaf.set(base, leaf.get(template))
        data = strip_none(body.model_dump(exclude={"clips"}))
        options = from_dict(ReconstructOptions, data, "options", base=base)
        options.clips = clips
        return options

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_schema():
        return app.openapi()

    @app.get("/health", response_model=Health, summary="liveness and queue length")
    def health():
        queued, running = queue.counts()
        return {"status": "ok", "network": queue.network_state, "queued": queued, "running": running}

    @app.get("/version", response_model=Version, summary="service and API versions, limits")
    def version():
        return {"name": "chromm", "version": __version__, "api": API_VERSION, "network": network,
                "device": device, "gpu": gpu, "max_clips": max_clips, "max_upload_bytes": max_upload_bytes,
                "accepts_paths": bool(allowed)}

    @app.post("/jobs", response_model=JobStatus, status_code=202,
              summary="reconstruct clips the service can read (local service, --allow-dir)")
    def submit_paths(body: PathJob):
        if not allowed:
            raise HTTPException(403, "this service takes uploads only (it was started without --allow-dir); "
                                     "use POST /jobs/upload")
        clips = []
        try:
            for path in body.clips:
                try:
                    clips.append(allowed.open(path))  # pinned: read through this descriptor from now on
                except PermissionError as exc:
                    raise HTTPException(403, str(exc)) from None
            aliases = {}
            for clip in clips:
                aliases.update({clip.real: str(clip), clip.open_path: str(clip)})
            job = _check_and_submit(_options(body, clips), sources=[str(c) for c in clips], aliases=aliases)
        except BaseException:
            for clip in clips:
                clip.close()
            raise
        return job.status()

    def _parse_options(text):
        try:
            data = json.loads(text or "{}")
            depth_checked(data)
            return JobOptions.model_validate(data)
        except RecursionError:
            raise HTTPException(422, f"options: nested more than {MAX_JSON_DEPTH} levels deep") from None
        except (ValueError, TypeError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else "not valid JSON"
            raise HTTPException(422, f"options: {message}") from None

    @app.post("/jobs/upload", response_model=JobStatus, status_code=202,
              summary="reconstruct uploaded video files (remote service)",
              openapi_extra={"requestBody": UPLOAD_SCHEMA})
    async def submit_upload(request: Request):
        # The body streams straight into the job's folder (written once, never spooled elsewhere).
        job_id, folder = await run_in_threadpool(queue.new_job_folder)
        upload_folder = os.path.join(folder, "uploads")
        try:
            received = await receive_uploads(request, upload_folder, max_clips, max_upload_bytes)
            body = _parse_options(received.options)
            paths = [path for path, _ in received.files]
            names = [name for _, name in received.files]
            options = _options(body, paths)

            def submit():
                return _check_and_submit(options, job_id, folder, upload_folder, sources=names,
                                         aliases=dict(received.files)).status()

            try:
                return await run_in_threadpool(submit)
            except ChrommError as exc:  # name the uploaded file, not where the service keeps it
                message = str(exc)
                for path, name in sorted(received.files, key=lambda f: -len(f[0])):
                    message = message.replace(path, name)
                raise ChrommError(message.replace(folder, "<job>")) from None
        except BaseException:
            await run_in_threadpool(queue.discard_job_folder, folder)
            raise

    @app.get("/jobs", response_model=List[JobStatus], summary="all jobs, oldest first")
    def list_jobs():
        return [job.status() for job in queue.jobs()]

    @app.get("/jobs/{job_id}", response_model=JobStatus, summary="a job's state and progress")
    def job_status(job_id: str):
        return _job_or_404(job_id).status()

    @app.post("/jobs/{job_id}/cancel", response_model=JobStatus, summary="cancel a queued or running job")
    def cancel_job(job_id: str):
        _job_or_404(job_id)
        return queue.cancel(job_id).status()

    @app.delete("/jobs/{job_id}", response_model=Deleted, summary="cancel if needed, forget the job, delete its files")
    def delete_job(job_id: str):
        _job_or_404(job_id)
        queue.remove(job_id)
        return {"id": job_id, "deleted": True}

    def _download(job_id, path, name):
        job = _job_or_404(job_id)
        if job.state != DONE:
            raise HTTPException(409, f"job {job_id} is {job.state}, not done")
        if not os.path.exists(path(job)):
            raise HTTPException(410, f"job {job_id}: the file is gone")
        return FileResponse(path(job), media_type="application/octet-stream", filename=name)

    @app.get("/jobs/{job_id}/take", response_class=FileResponse, summary="the take file (.npz) of a done job",
             responses={200: {"content": {"application/octet-stream": {}}}})
    def download_take(job_id: str):
        return _download(job_id, lambda j: j.take_path, f"{job_id}_take.npz")

    @app.get("/jobs/{job_id}/views", response_class=FileResponse, summary="the views file (.npz) of a done job",
             responses={200: {"content": {"application/octet-stream": {}}}})
    def download_views(job_id: str):
        return _download(job_id, lambda j: j.views_path, f"{job_id}_views.npz")

    return app


def depth_checked(value, limit=MAX_JSON_DEPTH):
    """`value` (parsed JSON) unchanged; RecursionError when it nests deeper than `limit`."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > limit:
                raise RecursionError("too deep")
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return value
