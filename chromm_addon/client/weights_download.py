"""Download Weights from the preferences: `weights download --json` run with the backend's Python
(where huggingface_hub is installed), its progress shown in the panel. Stdlib only, no bpy.

The hub token goes to the child in `HF_TOKEN`, not on its command line (other users can read
command lines). Blender's "Allow Online Access" is passed on as `--no-online-access`.
"""

import json

from ..errors import ChrommError
from ..network.hub import HUB_FILES, ONLINE_ACCESS_OFF, format_bytes
from .local_backend import backend_python
from .tasks import Task, backend_env


def download_command(python, folder, accepted):
    cmd = [python, "-m", "chromm_addon", "weights", "download", "--json"]
    cmd += [folder] if folder else []
    for kind in accepted:
        cmd += ["--accept", kind, "--only", kind]
    return cmd


def describe_progress(p):
    from ..backend.progress import format_eta

    title = HUB_FILES[p["kind"]].title if p.get("kind") in HUB_FILES else p.get("kind", "")
    rate = f", {p['rate'] / 1e6:.1f} MB/s" if p.get("rate") else ""
    left = f", {format_eta(p['eta_s'])} left" if p.get("eta_s") is not None else ""
    return f"{title}: {format_bytes(p['done'])} of {format_bytes(p['total'])}{rate}{left}"


def download_task(env_path, folder, accepted, token="", online_access=True, log_path=None):
    """A started Task downloading the accepted files; raises ChrommError at once when nothing can
    be done (no licence ticked, online access off, no backend)."""
    accepted = [k for k in HUB_FILES if k in set(accepted)]
    if not accepted:
        raise ChrommError("weights: tick the licence of each file to download "
                          "(" + "; ".join(f"{f.filename}: {f.licence}" for f in HUB_FILES.values()) + ")")
    if not online_access:
        raise ChrommError(f"weights: {ONLINE_ACCESS_OFF}")
    python = backend_python(env_path)

    def run(task):
        totals = {}
        errors = []

        def on_line(line):
            try:
                record = json.loads(line)
            except ValueError:
                if line.startswith("error: "):
                    errors.append(line[len("error: "):])
                return
            if record.get("event") == "progress":
                totals[record["kind"]] = (record["done"], record["total"])
                done = sum(d for d, _ in totals.values())
                total = sum(t for _, t in totals.values())
                task.update(stage=f"downloading {len(totals)} of {len(accepted)}",
                            detail=describe_progress(record),
                            fraction=done / total if total else None)
            elif record.get("event") in ("log", "done"):
                task.update(detail=record["message"])

        task.update(stage="asking the hub")
        env = backend_env({"HF_TOKEN": token} if token else None)
        status, tail = task.run_process(download_command(python, folder, accepted), on_line, env=env)
        if status != 0:
            raise ChrommError(errors[-1] if errors else (tail[-1] if tail else f"exit status {status}"))
        task.update(stage="done", fraction=1.0)

    return Task("download", run, log_path=log_path).start()
