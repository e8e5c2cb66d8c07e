"""The service's guards: bearer tokens, loopback binding, allowed folders, and size limits."""

import hmac
import ipaddress
import os
import secrets

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
        """The resolved path; ChrommError (naming it) when it lies outside every allowed folder."""
        path = str(path)
        if not os.path.isabs(os.path.expanduser(path)):
            raise PermissionError(f"{path}: give an absolute path")
        real = os.path.realpath(os.path.expanduser(path))
        for root in self.roots:
            if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
                return real
        raise PermissionError(f"{path}: outside the folders this service may read (--allow-dir)")


def safe_filename(name, fallback="clip"):
    """A plain file name from an upload's name: no folders, no odd characters."""
    base = os.path.basename(str(name or "").replace("\\", "/"))
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in base).lstrip(".")
    return cleaned[:120] or fallback
