"""Setup benchmark (run by hand): the add-on's upload to a service and the weights download.

    .venv/bin/python benchmarks/bench_setup.py upload   [--mb 256 --clips 2]
    .venv/bin/python benchmarks/bench_setup.py download [--mb 256]

`upload`: a real `serve` (tiny network, no --allow-dir) on loopback; the add-on's
`ServiceClient.submit_upload` streams `--clips` files of `--mb` MB each (random bytes: the service
answers 400 "not a video" after it has stored them, so the time is that of the upload).
`download`: `weights download` (huggingface_hub) from the local hub of tests/hub_server.py, a
file of `--mb` MB, hashed and renamed. Both print MB/s; copy them into docs/addon.md with the
machine they ran on.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def bench_upload(args):
    from chromm_addon.client.service import ServiceClient, ServiceError
    from test_server import start_service, stop_service

    token = "bench-token-" + "x" * 20
    proc, hello = start_service("--tiny-network", env_extra={"CHROMM_SERVICE_TOKEN": token})
    try:
        client = ServiceClient(hello["url"], token)
        with tempfile.TemporaryDirectory() as folder:
            clips = []
            for i in range(args.clips):
                path = os.path.join(folder, f"clip{i}.mp4")
                with open(path, "wb") as fh:
                    for _ in range(args.mb):
                        fh.write(os.urandom(1 << 20))
                clips.append(path)
            total = sum(os.path.getsize(c) for c in clips)
            t0 = time.perf_counter()
            try:
                client.submit_upload(clips)
            except ServiceError as exc:
                assert exc.status == 400, exc  # stored, then refused as not a video
            seconds = time.perf_counter() - t0
    finally:
        stop_service(proc)
    print(f"upload: {args.clips} x {args.mb} MB in {seconds:.2f} s = {total / 1e6 / seconds:.0f} MB/s")


def bench_download(args):
    from hub_server import LocalHub

    data = os.urandom(args.mb << 20)
    with LocalHub({("yyfz233/Pi3X", "model.safetensors"): data}) as hub, \
            tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, HF_ENDPOINT=hub.url, PYTHONPATH=ROOT)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "chromm_addon", "weights", "download", folder,
                        "--accept-licences", "--only", "pi3x"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
    print(f"download: {args.mb} MB in {seconds:.2f} s = {len(data) / 1e6 / seconds:.0f} MB/s "
          "(including the process start, the SHA-256 and the rename)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("upload", "download"))
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--clips", type=int, default=2)
    args = parser.parse_args()
    {"upload": bench_upload, "download": bench_download}[args.what](args)


if __name__ == "__main__":
    main()
