"""The HTTP service (FastAPI): submit, follow, cancel and download reconstructions.

Every route, the OpenAPI schema included, needs `Authorization: Bearer <token>`. Errors are JSON
`{"detail": "<one line naming the problem>"}` with a 4xx status.
"""

import json
import os
import re
import shutil
from typing import List, Optional

from .. import __version__
from ..errors import ChrommError
from ..options import SERVICE, ReconstructOptions, from_dict, leaves, strip_none
from .jobs import DONE, QueueFull
from .limits import MAX_CLIPS
from .security import AllowedRoots, safe_filename, token_matches
from .timeline import open_clips, plan_timeline

API_VERSION = 1


def create_app(queue, token, allowed=None, max_upload_bytes=4 << 30, max_clips=MAX_CLIPS,
               network="weights", device="cpu", gpu=None):
    from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    from .models import Deleted, Health, JobOptions, JobStatus, PathJob, Version

    allowed = allowed or AllowedRoots()
    bearer = HTTPBearer(auto_error=False, description="the service's token")

    def require_token(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)):
        if credentials is None or credentials.scheme.lower() != "bearer" or \
                not token_matches(credentials.credentials, token):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="CHROMM reconstruction service", version=__version__, openapi_url=None,
                  docs_url=None, redoc_url=None, dependencies=[Depends(require_token)])

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

    def _job_or_404(job_id):
        job = queue.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job

    def _check_and_submit(options, job_id=None, folder=None, upload_folder=None):
        if len(options.clips) > max_clips:
            raise ChrommError(f"{len(options.clips)} clips; this service takes at most {max_clips}")
        # Open every clip now, so bad input is answered at once rather than as a failed job.
        clips, offsets = open_clips(options.clips, options.offsets, options.image_fps)
        plan_timeline(clips, offsets, options.fps, options.start, options.end)
        if options.cameras is not None:    # known cameras checked against the clips now, too
            from .known_cameras import prepare

            prepare(options.cameras, clips)
        try:
            return queue.submit(options, job_id=job_id, folder=folder, upload_folder=upload_folder)
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
        for path in body.clips:
            try:
                clips.append(allowed.check(path))
            except PermissionError as exc:
                raise HTTPException(403, str(exc)) from None
        return _check_and_submit(_options(body, clips)).status()

    @app.post("/jobs/upload", response_model=JobStatus, status_code=202,
              summary="reconstruct uploaded video files (remote service)")
    def submit_upload(request: Request, files: List[UploadFile] = File(..., description="one video per view"),
                      options: str = Form("{}", description="JSON object of job options (as POST /jobs, without clips)")):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_upload_bytes * max_clips:
            raise HTTPException(413, f"upload of {int(length)} bytes is over the limit "
                                     f"({max_clips} clips x {max_upload_bytes} bytes)")
        if len(files) > max_clips:
            raise HTTPException(413, f"{len(files)} files; this service takes at most {max_clips} clips")
        try:
            body = JobOptions.model_validate(json.loads(options or "{}"))
        except (ValueError, TypeError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else "not valid JSON"
            raise HTTPException(422, f"options: {message}") from None
        job_id, folder = queue.new_job_folder()
        upload_folder = os.path.join(folder, "uploads")
        try:
            clips = []
            for index, upload in enumerate(files):
                target_dir = os.path.join(upload_folder, str(index))
                os.makedirs(target_dir)
                target = os.path.join(target_dir, safe_filename(upload.filename, f"clip{index}"))
                _copy_limited(upload.file, target, max_upload_bytes, upload.filename)
                clips.append(target)
            try:
                return _check_and_submit(_options(body, clips), job_id, folder, upload_folder).status()
            except ChrommError as exc:  # name the uploaded file, not where the service keeps it
                message = re.sub(re.escape(upload_folder + os.sep) + r"\d+" + re.escape(os.sep), "", str(exc))
                raise ChrommError(message) from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
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


def _copy_limited(source, target, limit, name):
    from fastapi import HTTPException

    written = 0
    with open(target, "wb") as out:
        while True:
            chunk = source.read(1 << 20)
            if not chunk:
                break
            written += len(chunk)
            if written > limit:
                raise HTTPException(413, f"{name}: upload over the limit of {limit} bytes")
            out.write(chunk)
    if written == 0:
        raise HTTPException(400, f"{name}: the uploaded file is empty")
