"""Write to a temporary name beside the target and rename, so no half-written file is left."""

import contextlib
import os
import tempfile

from ..errors import ChrommError


@contextlib.contextmanager
def atomic_output(path, suffix=None):
    """Yield a temporary path in the target's folder; rename it onto `path` if the block succeeds.

    `suffix` defaults to the target's extension, because some writers (numpy.savez, Blender's
    save_as_mainfile) append or check one.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".chromm-", suffix=suffix, dir=folder)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    except OSError as exc:
        raise ChrommError(f"{path}: cannot write there ({_reason(exc)})") from None
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise ChrommError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(exc):
    if exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return exc.strerror or str(exc)
