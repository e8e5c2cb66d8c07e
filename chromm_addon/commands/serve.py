"""`serve`: the HTTP reconstruction service (FastAPI on uvicorn).

Handshake: once the socket is bound, the first line on stdout is one JSON object
`{"chromm_service": 1, "url": ..., "host": ..., "port": ..., "pid": ..., "version": ..., "token": ...}`
("token" only when the service generated it); `--token-file` writes the same object to a file
readable by the owner only. The add-on starts `serve --port 0 --token-file F`, reads the line
(or the file) and sends `Authorization: Bearer <token>` with every request.
"""

import argparse


def add_arguments(parser):
    from ..options import SERVICE, ReconstructOptions, add_arguments as add_option_arguments

    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port; default 8765)")
    parser.add_argument("--token", help="bearer token (default: $CHROMM_SERVICE_TOKEN, or a new one "
                                        "for a loopback service); required off loopback")
    parser.add_argument("--token-file", help="write the handshake (url, token) to this file, mode 0600")
    parser.add_argument("--allow-dir", action="append", default=[], metavar="DIR",
                        help="folder whose clips may be submitted by path (repeatable)")
    parser.add_argument("--work-dir", help="folder for uploads and results (default: a new temporary folder)")
    parser.add_argument("--max-queue", type=int, default=8, help="jobs waiting at most (default 8)")
    parser.add_argument("--max-upload-mb", type=int, default=4096, help="per uploaded clip (default 4096)")
    parser.add_argument("--max-clips", type=int, default=16, help="clips per job (default 16)")
    # The service's own options of the schema: --network, --device, --weights, --smplx (--seed).
    add_option_arguments(parser, ReconstructOptions, scopes=(SERVICE,), config=False)
    parser.add_argument("--tiny-network", dest="network", action="store_const", const="tiny",
                        help=argparse.SUPPRESS)  # shorthand of --network tiny (tests, CI)


def run(args):
    import json
    import os
    import shutil
    import socket
    import sys
    import tempfile

    from .. import __version__
    from ..backend.jobs import JobQueue
    from ..backend.limits import MAX_CLIPS
    from ..network.registry import check_runner_options
    from ..options import SERVICE, ReconstructOptions, from_args
    from ..backend.security import AllowedRoots, is_loopback, service_token
    from ..backend.server import create_app
    from ..errors import ChrommError
    from ..io.atomic import atomic_output

    token, generated = service_token(args.host, args.token)
    allowed = AllowedRoots(args.allow_dir)
    if not (0 <= args.port <= 65535):
        raise ChrommError(f"--port {args.port}: expected 0..65535")
    if not (1 <= args.max_clips <= MAX_CLIPS):
        raise ChrommError(f"--max-clips {args.max_clips}: expected 1..{MAX_CLIPS}")
    if args.max_queue < 1 or args.max_upload_mb < 1:
        raise ChrommError("--max-queue and --max-upload-mb must be at least 1")
    runner_options = from_args(ReconstructOptions, args, scopes=(SERVICE,))
    network = check_runner_options(runner_options)  # device and weights, at start, not at the first job
    from ..backend.device import device_info

    # /version says what really runs: cuda:0 and its GPU, or cpu (the tiny network always is).
    used = device_info(runner_options.device, tiny=runner_options.tiny_network)

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted connections
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        raise ChrommError(f"--host {args.host} --port {args.port}: cannot listen there ({exc.strerror})") from None
    sock.listen(64)
    port = sock.getsockname()[1]

    own_work_dir = args.work_dir is None
    work_dir = tempfile.mkdtemp(prefix="chromm-service-") if own_work_dir else os.path.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    queue = JobQueue(work_dir, runner_options, max_queued=args.max_queue)
    app = create_app(queue, token, allowed=allowed, max_upload_bytes=args.max_upload_mb << 20,
                     max_clips=args.max_clips, network=network,
                     device=used["device"], gpu=used["gpu"])

    url_host = f"[{args.host}]" if ":" in args.host else args.host
    handshake = {"chromm_service": 1, "url": f"http://{url_host}:{port}", "host": args.host, "port": port,
                 "pid": os.getpid(), "version": __version__, "loopback": is_loopback(args.host)}
    if args.token_file:
        with atomic_output(args.token_file, suffix=".json") as tmp:
            os.chmod(tmp, 0o600)
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({**handshake, "token": token}, fh)
    print(json.dumps({**handshake, **({"token": token} if generated else {})}), flush=True)

    import signal

    import uvicorn

    # uvicorn re-raises the signal it stopped on; make SIGTERM a clean exit so cleanup runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    queue.start()
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        queue.stop()
        sock.close()
        if own_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
        if args.token_file:
            try:
                os.remove(args.token_file)
            except OSError:
                pass
        print("service stopped", file=sys.stderr)
    return 0

