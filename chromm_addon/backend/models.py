"""The HTTP service's request and response models (pydantic), importable by the service, its
clients' tests and the docs. The job options are derived from the options schema
(`chromm_addon.options`): a request body holds the same JSON as a `--config` file."""

from typing import List, Optional

from pydantic import BaseModel, Field

from ..options import ReconstructOptions, request_model

# Every per-job option of the schema, nested like the dataclasses (`fuse.tracking.gate_m`).
JobOptions = request_model(ReconstructOptions, "JobOptions")


class PathJob(JobOptions):
    clips: List[str] = Field(..., min_length=1, description="absolute paths under the allowed folders")


class JobStatus(BaseModel):
    id: str
    state: str = Field(..., description="queued, running, done, failed or cancelled")
    error: Optional[str] = None
    clips: List[str]
    stage: str
    done: int
    total: int
    fraction: float
    eta_s: Optional[float] = None
    created: float
    started: Optional[float] = None
    finished: Optional[float] = None
    timesteps: int


class Health(BaseModel):
    status: str
    network: str = Field(..., description="not loaded, loading, ready, or error: <why>")
    queued: int
    running: Optional[str] = None


class Version(BaseModel):
    name: str
    version: str
    api: int
    network: str
    device: str = Field(..., description="the device the network runs on: cpu or cuda:N")
    gpu: Optional[str] = Field(None, description="the GPU's name when the device is CUDA")
    max_clips: int
    max_upload_bytes: int
    accepts_paths: bool


class Deleted(BaseModel):
    id: str
    deleted: bool
