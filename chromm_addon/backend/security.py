"""The service's guards: bearer tokens, loopback binding, allowed folders, and size limits."""

import hmac
import ipaddress
import os
import secrets
import stat

from ..errors import ChrommError

TOKEN_ENV = "CHROMM_SERVICE_TOKEN"
MIN_TOKEN_LENGTH = 16


def is_loopback(host):
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def service_token(host, token=None):
    """(token, generated): the given token (or $CHROMM_SERVICE_TOKEN), else a fresh one for a
    loopback service. A service reachable from other machines must be given one explicitly."""
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is not None:
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise ChrommError(f"--token: a token needs at least {MIN_TOKEN_LENGTH} characters and no spaces")
        return token, False
    if not is_loopback(host):
        raise ChrommError(f"--host {host}: a service reachable from other machines needs an explicit "
                          f"--token (or ${TOKEN_ENV}); refusing to start without one")
    return secrets.token_urlsafe(32), True


def token_matches(given, expected):
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class AllowedRoots:
    """Folders a local service may read clips from; a path must resolve (symlinks followed) inside one."""

    def __init__(self, folders=()):
        roots = []
        for folder in folders or ():
            real = os.path.realpath(os.path.expanduser(str(folder)))
            if not os.path.isdir(real):
                raise ChrommError(f"--allow-dir {folder}: not a folder")
            roots.append(real)
        self.roots = roots

    def __bool__(self):
        return bool(self.roots)

    def check(self, path):
        """The resolved path; PermissionError (naming it) when it lies outside every allowed folder,
        ChrommError when it cannot be a path at all."""
        path = str(path)
        if "\0" in path:
            raise ChrommError(f"{path!r}: a path cannot contain a NUL byte")
        if not os.path.isabs(os.path.expanduser(path)):
            raise PermissionError(f"{path}: give an absolute path")
        real = os.path.realpath(os.path.expanduser(path))
        if not self.inside(real):
            raise PermissionError(f"{path}: outside the folders this service may read (--allow-dir)")
        return real

    def inside(self, real):
        return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in self.roots)

    def open(self, path):
        """The clip at `path` opened now, as a PinnedPath: resolved, checked, then opened component
        by component without following any link, so a path swapped for a link after the check
        cannot lead outside. Reading later goes through the open descriptor, never the path."""
        real = self.check(path)
        try:
            fd = open_no_links(real)
        except FileNotFoundError:
            raise ChrommError(f"{path}: no such file or folder") from None
        except OSError as exc:
            raise PermissionError(f"{path}: cannot be opened without following a link "
                                  f"({exc.strerror or exc})") from None
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            os.close(fd)
            raise ChrommError(f"{path}: not a file or folder")
        return PinnedPath(str(path), real, fd, stat.S_ISDIR(mode))


def open_no_links(real):
    """A read-only descriptor of the absolute, already resolved path `real`, opened one component
    at a time with O_NOFOLLOW: a link anywhere on the way (one that appeared after `realpath`)
    fails with ELOOP or ENOTDIR instead of being followed. Non-blocking, so a FIFO cannot hang."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0) | \
        getattr(os, "O_NONBLOCK", 0)
    if os.open not in os.supports_dir_fd:  # no openat (Windows): the last component only
        return os.open(real, flags)
    parts = [p for p in real.split(os.sep) if p]
    fd = os.open(os.sep, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            next_fd = os.open(part, flags | (0 if last else getattr(os, "O_DIRECTORY", 0)), dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


_PROC_FD = "/proc/self/fd"


class PinnedPath:
    """A clip the service opened at submission. `str()` is the path the client gave (for names and
    messages); `open_path` reopens the very same file or folder through its descriptor (Linux:
    /proc/self/fd/N), whatever happens to the path afterwards. Folder members are opened without
    following links (`video.ImageFolderClip`)."""

    pinned = True

    def __init__(self, shown, real, fd, is_dir):
        self.shown, self.real, self.fd, self.is_dir = shown, real, fd, is_dir

    @property
    def open_path(self):
        if self.fd is None:
            raise ChrommError(f"{self.shown}: the clip was closed")
        if os.path.isdir(_PROC_FD):
            return f"{_PROC_FD}/{self.fd}"
        return self.real  # no /proc: the path checked at submission (documented limitation)

    def close(self):
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def __str__(self):
        return self.shown

    def __repr__(self):
        return f"PinnedPath({self.shown!r})"


def safe_filename(name, fallback="clip"):
    """A plain file name from an upload's name: no folders, no odd characters."""
    base = os.path.basename(str(name or "").replace("\\", "/"))
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in base).lstrip(".")
    return cleaned[:120] or fallback
