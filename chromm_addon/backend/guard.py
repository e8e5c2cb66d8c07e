"""The service's front door: a pure ASGI middleware that refuses before reading a byte of the body.

Every HTTP request is checked on its head alone, in this order:

1. the `Host` header must name this service (the bound address, `localhost`, `127.0.0.1`,
   `[::1]`, any IP literal, or a name given with `--allow-host`): a page whose own name was
   re-pointed at 127.0.0.1 (DNS rebinding) is answered 400;
2. `Authorization: Bearer <token>` (compared in constant time), else 401;
3. `Content-Length` against the route's limit, else 413.

Each refusal is sent with `Connection: close`, so the server closes the connection without
reading the body. A body sent without a length (chunked) is counted as it streams and cut at the
limit (413); a body that stalls longer than `body_timeout` seconds between chunks ends the request
(408). Nothing here parses the body: the application behind it only sees requests that passed.
"""

import asyncio
import ipaddress
import json

from starlette.exceptions import HTTPException

from .security import token_matches

JSON_BODY_LIMIT = 1 << 20  # bytes of a JSON request body (a list of clip paths and options)
HEADER_TIMEOUT_S = 10.0    # a connection must send a complete request head within this
BODY_TIMEOUT_S = 30.0      # longest pause between two chunks of a request body


class BodyTooLarge(HTTPException):
    def __init__(self, limit):
        super().__init__(413, f"request body over this route's limit of {limit} bytes")


class BodyTimeout(HTTPException):
    def __init__(self, seconds):
        super().__init__(408, f"the request body stalled for more than {seconds:g} s")


def _host_name(value):
    """The host part of a Host header ('[::1]:8765' -> '::1', 'Name:80' -> 'name')."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else None
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    elif value.count(":") > 1:  # a bare IPv6 address without brackets is not a valid Host
        return None
    return value.rstrip(".")


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class Guard:
    """Wraps an ASGI app. `body_limit(path, method)` gives the largest body a route may get."""

    def __init__(self, app, token, hosts=(), body_limit=None, body_timeout=30.0):
        self.app = app
        self.token = token
        self.hosts = {h.lower().strip("[]").rstrip(".") for h in ("localhost", "127.0.0.1", "::1", *hosts) if h}
        self.body_limit = body_limit or (lambda path, method: JSON_BODY_LIMIT)
        self.body_timeout = float(body_timeout)

    def host_allowed(self, value):
        name = _host_name(value or "")
        return bool(name) and (name in self.hosts or _is_ip(name))

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":  # the service has none; refuse rather than pass unchecked
            return await send({"type": "websocket.close", "code": 1008})
        if scope["type"] != "http":  # lifespan
            return await self.app(scope, receive, send)
        headers = {}
        for key, value in scope["headers"]:
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        if not self.host_allowed(headers.get("host")):
            return await _refuse(send, 400, "Host header names another site; this service answers "
                                            "only to its own address (see --allow-host)")
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token_matches(credentials.strip(), self.token):
            return await _refuse(send, 401, "missing or wrong bearer token", [(b"www-authenticate", b"Bearer")])
        limit = int(self.body_limit(scope["path"], scope["method"]))
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                return await _refuse(send, 400, "Content-Length is not a number")
            if int(length) > limit:
                return await _refuse(send, 413, f"request body of {int(length)} bytes is over this "
                                                f"route's limit of {limit} bytes")
        # HTTP/1.1: a request with neither Content-Length nor Transfer-Encoding has no body.
        received = 0
        body_done = length.strip() == "0" if length is not None else "transfer-encoding" not in headers

        async def limited_receive():
            nonlocal received, body_done
            if body_done:  # after the body only http.disconnect can come: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except asyncio.TimeoutError:
                raise BodyTimeout(self.body_timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                body_done = not message.get("more_body", False)
            return message

        async def closing_send(message):
            # An answer sent before the whole body came in closes the connection: the rest of the
            # body is never read.
            if message["type"] == "http.response.start" and not body_done:
                message = dict(message, headers=[*message.get("headers", ()), (b"connection", b"close")])
            await send(message)

        await self.app(scope, limited_receive, closing_send)


async def _refuse(send, status, detail, extra_headers=()):
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *extra_headers]})
    await send({"type": "http.response.body", "body": body})


def guarded_h11(header_timeout=HEADER_TIMEOUT_S):
    """uvicorn's h11 protocol with a deadline for the request head: a connection that has not sent
    a complete head `header_timeout` seconds after it opened (or after its previous response) is
    closed, so connections that never finish their headers (slowloris) do not pile up."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _head_timer = None

        def _arm_head_deadline(self):
            self._disarm_head_deadline()
            self._head_timer = self.loop.call_later(header_timeout, self._head_deadline)

        def _disarm_head_deadline(self):
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_deadline(self):
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm_head_deadline()

        def connection_lost(self, exc):
            self._disarm_head_deadline()
            super().connection_lost(exc)

        def on_response_complete(self):
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_deadline()

    return GuardedH11Protocol
