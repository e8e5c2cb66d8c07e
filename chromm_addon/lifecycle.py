"""Process lifetime for the commands: stop cleanly on SIGTERM, and with the parent process.

`Terminated` is raised in the main thread when SIGTERM arrives, so `finally` blocks and context
managers (staging folders, `atomic_output`, `subprocess.run`, which kills its child) clean up as
they do for Ctrl-C. `watch_stdin_eof` lets a child process stop when its parent dies in any way
(`kill -9` included): the parent holds the write end of the child's stdin pipe, and the system
closes it when the parent exits. (Linux's parent-death signal would also work, but it fires when
the *thread* that started the child ends, which in Blender is a worker thread.)
"""

import os
import signal
import sys
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so everything that cleans up after an interrupt does so."""


def _raise_terminated(signum, frame):
    raise Terminated()


def terminate_as_interrupt():
    """From now on SIGTERM raises `Terminated` in the main thread (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def watch_stdin_eof(on_eof, what="the parent process is gone"):
    """Call `on_eof()` (in a daemon thread) when stdin reaches its end."""

    def watch():
        # os.read on the descriptor, not sys.stdin: a daemon thread blocked inside the buffered
        # reader holds its lock, and the interpreter's shutdown would then abort on it.
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        on_eof()  # first: with the parent gone, writing to its pipes fails
        try:
            print(f"standard input closed ({what}): stopping", file=sys.stderr)
        except (OSError, ValueError):
            pass

    thread = threading.Thread(target=watch, name="chromm-stdin-watch", daemon=True)
    thread.start()
    return thread


def interrupt_main():
    """For `watch_stdin_eof`: end the main thread as SIGTERM would."""
    os.kill(os.getpid(), signal.SIGTERM)
