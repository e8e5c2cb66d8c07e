"""Write to a temporary name beside the target and rename, so no half-written file is left."""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_output(path, suffix=None):
    """Yield a temporary path in the target's folder; rename it onto `path` if the block succeeds.

    `suffix` defaults to the target's extension, because some writers (numpy.savez, Blender's
    save_as_mainfile) append or check one.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".chromm-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
