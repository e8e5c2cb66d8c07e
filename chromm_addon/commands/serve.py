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
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a host name clients may use to reach the service (Host header), besides "
                             "the bound address, localhost and IP addresses (repeatable)")
    parser.add_argument("--header-timeout", type=float, default=10.0,
                        help="seconds a connection may take to send a request head (default 10)")
    parser.add_argument("--body-timeout", type=float, default=30.0,
                        help="longest pause, in seconds, inside a request body (default 30)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when standard input reaches its end (the add-on keeps a pipe "
                             "open there, so the service stops when Blender dies)")
    # The service's own options of the schema: --network, --device, --weights, --smplx (--seed).
    add_option_arguments(parser, ReconstructOptions, scopes=(SERVICE,), config=False)
    from .batch import add_cluster_arguments

    add_cluster_arguments(parser, "run the jobs on a Ray cluster (as `batch --ray`): each job's windows "
                                  "spread over the cluster's GPU workers")
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
    if not (0 < args.header_timeout <= 3600 and 0 < args.body_timeout <= 3600):
        raise ChrommError("--header-timeout and --body-timeout: expected (0, 3600] seconds")
    runner_options = from_args(ReconstructOptions, args, scopes=(SERVICE,))
    executor_factory = None
    if args.ray is None:
        network = check_runner_options(runner_options)  # device and weights, at start, not at the first job
        from ..backend.device import device_info

        # /version says what really runs: cuda:0 and its GPU, or cpu (the tiny network always is).
        used = device_info(runner_options.device, tiny=runner_options.tiny_network)
    else:  # the workers check device and weights on their nodes when they start
        from ..backend.cluster import RayExecutor, connect
        from ..network.registry import resolve_network

        network = resolve_network(runner_options.network, runner_options.weights)
        where = connect(args.ray)
        used = {"device": where, "gpu": f"Ray cluster, {args.gpus_per_worker:g} GPU per worker"}

        def executor_factory():
            return RayExecutor(runner_options, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                               description=where)

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
    queue = JobQueue(work_dir, runner_options, max_queued=args.max_queue, executor_factory=executor_factory)
    try:
        queue.claim_work_dir()
    except BaseException:
        sock.close()
        raise
    kept, removed = queue.recover()  # what a service that died on this work dir left behind
    if kept or removed:
        print(f"work dir {work_dir}: {kept} finished job(s) kept, {removed} unfinished removed", file=sys.stderr)
    hosts = [args.host, *args.allow_host]
    if args.host in ("0.0.0.0", "::", ""):  # every interface: the machine's own names too
        hosts += [socket.gethostname(), socket.getfqdn()]
    app = create_app(queue, token, allowed=allowed, max_upload_bytes=args.max_upload_mb << 20,
                     max_clips=args.max_clips, network=network,
                     device=used["device"], gpu=used["gpu"], hosts=hosts, body_timeout=args.body_timeout)

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

    from ..backend.guard import guarded_h11

    # uvicorn re-raises the signal it stopped on; make SIGTERM a clean exit so cleanup runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    queue.start()
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5,
                            http=guarded_h11(args.header_timeout), timeout_keep_alive=5,
                            h11_max_incomplete_event_size=16 << 10, lifespan="off")
    server = uvicorn.Server(config)
    if args.exit_on_stdin_eof:  # the parent holds the pipe: it is closed when the parent dies
        from ..lifecycle import watch_stdin_eof

        watch_stdin_eof(lambda: setattr(server, "should_exit", True))
    try:
        server.run(sockets=[sock])
    finally:
        worker_ended = queue.stop(timeout=10.0)
        sock.close()
        if own_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
        else:  # finished results stay for the next service on this work dir; the rest goes
            queue.remove_unfinished()
        if args.token_file:
            try:
                os.remove(args.token_file)
            except OSError:
                pass
        try:
            print("service stopped", file=sys.stderr)
            sys.stderr.flush()
        except OSError:  # nobody reads stderr any more (the parent died)
            pass
        if not worker_ended:
            # A job still inside the network (native code) would abort the interpreter's
            # shutdown; everything is cleaned up, so leave at once.
            os._exit(0)
    return 0

