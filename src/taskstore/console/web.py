"""The console's HTTP side: an aiohttp application on the server's own event loop
(docs/console.md). Imported only when the console is on.

Every request is authenticated (HTTP Basic, :mod:`taskstore.console.identity`) before
anything else happens; a failure is a bare 401. A task is always looked up with the owner the
identity acts for, so another owner's task answers exactly what an unknown id answers (404,
same body). Actions change the store through the same operations the TASK commands use, so
they are journaled, published and wake blocked clients like any command.

Browser-side defences: actions need a custom header (``X-Taskstore-Console``), which a page
of another origin cannot send without a CORS preflight this server never grants; with a
loopback-only bind the ``Host`` must be a loopback name (no DNS rebinding onto the anonymous
user); every response forbids framing and inline script (CSP).
"""

from __future__ import annotations

import contextvars
import errno
import json
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from taskstore.console import listing, views
from taskstore.console.feed import Feed
from taskstore.console.identity import Identity, OwnerRefused, authenticate, choose_owner
from taskstore.server.config import ConfigError
from taskstore.store import InvalidArgument, TaskError, TaskNotFound, TaskRecord

if TYPE_CHECKING:
    from taskstore.server.app import Server

__all__ = ["Console"]

log = logging.getLogger("taskstore")

STATIC = Path(__file__).with_name("static")
#: The page's files, by the name it asks for them, and their content types.
STATIC_FILES = {
    "console.js": "text/javascript",
    "console.css": "text/css",
    "favicon.svg": "image/svg+xml",
}

#: Rows per page unless the page asks for another number (at most TASK.LIST's limit).
DEFAULT_PAGE = 50
#: Largest request body (an answer to input requests): max_input_bytes is 1 MiB by default.
MAX_BODY = 17 * 1024 * 1024
#: The header every action must carry (a cross-origin page cannot add it unasked).
ACTION_HEADER = "X-Taskstore-Console"

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

#: Who sent the request being handled (set by the guard; each request runs in its task).
_IDENTITY: contextvars.ContextVar[Identity] = contextvars.ContextVar("console_identity")

#: One body for every task that is not this owner's: unknown, another owner's, malformed id.
NOT_FOUND = {"error": "task not found"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def _unauthorized() -> web.Response:
    return web.Response(
        status=401,
        text="401 Unauthorized\n",
        headers={"WWW-Authenticate": 'Basic realm="taskstore", charset="UTF-8"'},
    )


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _bind(bind: str, port: int) -> list[socket.socket]:
    """Listening sockets on every bind address, made now so errors reach the caller."""
    socks: list[socket.socket] = []
    try:
        for host in bind.split():
            infos = socket.getaddrinfo(
                host.lstrip("-"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            seen: set[Any] = set()
            for family, kind, proto, _, addr in infos:
                if addr in seen:
                    continue
                seen.add(addr)
                sock = socket.socket(family, kind, proto)
                socks.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(addr)
                sock.listen(128)
                sock.setblocking(False)
    except OSError as e:
        for sock in socks:
            sock.close()
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(f"console_port {port} is already in use ({bind})") from None
        raise ConfigError(
            f"cannot listen on {bind}:{port} for the console: {e.strerror or e}"
        ) from None
    return socks


class Console:
    """The console of one server: its listening sockets, its web application, its feed."""

    def __init__(self, server: Server, port: int) -> None:
        self.server = server
        self.port = port
        self.feed = Feed(server)
        self.loopback_only = server.config.loopback_only
        self._socks = _bind(server.config.bind, port)
        self._runner: web.AppRunner | None = None
        self._stopping = False
        #: signs the list's cursors (bound to the owner, like TASK.LIST's)
        self._secret = secrets.token_bytes(32)
        self._static = {
            name: (STATIC / name).read_bytes() for name in (*STATIC_FILES, "index.html")
        }

    @property
    def url(self) -> str:
        host = self.server.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    # -- lifecycle -----------------------------------------------------------------------

    async def serve(self) -> None:
        """Start answering on the sockets bound at construction."""
        if self._stopping:
            return
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        app.router.add_get("/", self.index)
        app.router.add_get("/tasks/{task_id:.+}", self.task_page)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/api/me", self.me)
        app.router.add_get("/api/tasks", self.tasks)
        app.router.add_get("/api/task", self.task)
        app.router.add_get("/api/task/payload", self.payload)
        app.router.add_post("/api/task/cancel", self.cancel)
        app.router.add_post("/api/task/cancel-request", self.cancel_request)
        app.router.add_post("/api/task/answer", self.answer)
        app.router.add_get("/api/events", self.events)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        if self._stopping:  # stopped (CONFIG SET again) while setting up
            await runner.cleanup()
            return
        self._runner = runner
        for sock in self._socks:
            await web.SockSite(runner, sock).start()

    async def stop(self) -> None:
        """End every stream, stop listening, wait for requests in progress (at most ~1 s)."""
        self._stopping = True
        self.feed.close_all()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        for sock in self._socks:
            sock.close()
        await self.feed.wait_idle()

    # -- every request ---------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.loopback_only and _host_name(request.host).lower() not in _LOOPBACK_HOSTS:
            response: web.StreamResponse = _error(421, "this console answers loopback names only")
        else:
            identity = authenticate(self.server, request.headers.get("Authorization"))
            if identity is None:
                response = _unauthorized()
            elif request.method == "POST" and request.headers.get(ACTION_HEADER) != "1":
                response = _error(403, f"actions need the header {ACTION_HEADER}: 1")
            else:
                _IDENTITY.set(identity)
                response = await handler(request)
        if not response.prepared:
            response.headers.update(_SECURITY_HEADERS)
        return response

    def _who(self, request: web.Request) -> tuple[Identity, str]:
        identity = _IDENTITY.get()
        return identity, choose_owner(identity, request.query.get("owner"))

    def _find(self, owner: str, task_id: str | None) -> TaskRecord | None:
        """The owner's task, or None for anything else (another owner's, unknown, malformed)."""
        if not task_id:
            return None
        try:
            return self.server.store.get(owner, task_id)
        except (TaskNotFound, InvalidArgument):
            return None

    # -- pages -----------------------------------------------------------------------------

    def _page(self) -> web.Response:
        return web.Response(body=self._static["index.html"], content_type="text/html")

    async def index(self, request: web.Request) -> web.StreamResponse:
        try:
            self._who(request)
        except OwnerRefused as e:
            return web.Response(status=e.status, text=f"{e}\n")
        return self._page()

    async def task_page(self, request: web.Request) -> web.StreamResponse:
        """``/tasks/<id>``: the page, opened on that task; 404 unless it is the owner's."""
        try:
            _, owner = self._who(request)
        except OwnerRefused as e:
            return web.Response(status=e.status, text=f"{e}\n")
        if self._find(owner, request.match_info["task_id"]) is None:
            return web.Response(status=404, text="404: task not found\n")
        return self._page()

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        kind = STATIC_FILES.get(name)
        if kind is None:
            return web.Response(status=404, text="404: not found\n")
        return web.Response(body=self._static[name], content_type=kind)

    # -- the JSON API ----------------------------------------------------------------------

    async def me(self, request: web.Request) -> web.StreamResponse:
        identity = _IDENTITY.get()
        return _json(
            {
                "user": identity.user,
                "owner": identity.owner,
                "admin": identity.admin,
                "impersonate": identity.impersonate,
                "anonymous": identity.anonymous,
                "mayChooseOwner": identity.may_choose_owner,
                "statuses": list(views.STATUSES),
                "listMaxLimit": self.server.store.store_config.list_max_limit,
            }
        )

    async def tasks(self, request: web.Request) -> web.StreamResponse:
        """A page of the owner's tasks, newest first: ``status``, ``method``, ``cursor``,
        ``limit``."""
        try:
            _, owner = self._who(request)
        except OwnerRefused as e:
            return _error(e.status, str(e))
        query = request.query
        store = self.server.store
        max_limit = store.store_config.list_max_limit
        raw_limit = query.get("limit", "")
        if raw_limit:
            if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= max_limit:
                return _error(400, f"ERR LIMIT must be between 1 and {max_limit}")
            limit = int(raw_limit)
        else:
            limit = min(DEFAULT_PAGE, max_limit)
        try:
            keep = listing.make_filter(query.get("status") or None, query.get("method") or None)
            records, cursor = listing.page(
                store, owner, keep, query.get("cursor"), limit, self._secret
            )
        except InvalidArgument as e:
            return _error(400, str(e))
        return _json(
            {
                "owner": owner,
                "tasks": [views.summary(record) for record in records],
                "nextCursor": cursor,
                "serverTime": store.now_ms(),
            }
        )

    def _requested_task(self, request: web.Request) -> TaskRecord | web.StreamResponse:
        """The task ``?id=`` names, of the owner shown; else the response to send (the
        owner refused, or the same 404 for every id that is not the owner's)."""
        try:
            _, owner = self._who(request)
        except OwnerRefused as e:
            return _error(e.status, str(e))
        record = self._find(owner, request.query.get("id"))
        if record is None:
            return _json(NOT_FOUND, 404)
        return record

    async def task(self, request: web.Request) -> web.StreamResponse:
        record = self._requested_task(request)
        if isinstance(record, web.StreamResponse):
            return record
        return _json(views.detail(record, self.server.store.now_ms()))

    async def payload(self, request: web.Request) -> web.StreamResponse:
        """One payload of a task whole (the detail view shows large ones cut short)."""
        record = self._requested_task(request)
        if isinstance(record, web.StreamResponse):
            return record
        name = request.query.get("name", "")
        if name not in views.PAYLOAD_NAMES:
            return _error(400, f"name must be one of {', '.join(views.PAYLOAD_NAMES)}")
        data = views.payload_bytes(record, name)
        if data is None:
            return _error(404, f"the task has no {name}")
        return web.Response(
            body=data,
            content_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}.json"'},
        )

    # -- actions (admins) ------------------------------------------------------------------

    async def _act(
        self, request: web.Request, action: str, run: Callable[[str, str, Any], Any]
    ) -> web.StreamResponse:
        """Check rights and the body, run one store operation, make it durable, answer."""
        try:
            identity, owner = self._who(request)
        except OwnerRefused as e:
            return _error(e.status, str(e))
        if not identity.admin:
            return _error(
                403, f"NOPERM User {identity.user} has no permissions to run the '{action}' action"
            )
        task_id = request.query.get("id")
        if task_id is None or self._find(owner, task_id) is None:
            return _json(NOT_FOUND, 404)
        server = self.server
        if server.writes_refused is not None:
            return _error(503, server.writes_refused)
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return _error(400, "ERR invalid JSON: the body must be a JSON object")
        if not isinstance(body, dict):
            return _error(400, "ERR invalid JSON: the body must be a JSON object")
        try:
            outcome = run(owner, task_id, body)
        except TaskNotFound:
            return _json(NOT_FOUND, 404)
        except InvalidArgument as e:
            return _error(400, str(e))
        except TaskError as e:
            return _error(409, str(e))  # INVALIDTRANSITION, EXPIRED, TOOLARGE, ...
        aof = server.aof
        if aof is not None and not (aof.commit() if aof.buffer else aof.write_error is None):
            return _error(500, f"MISCONF Errors writing to the AOF file: {aof.write_error}")
        record = self._find(owner, task_id)
        now = server.store.now_ms()
        out: dict[str, Any] = {"task": None if record is None else views.detail(record, now)}
        if outcome is not None:
            out.update(outcome)
        return _json(out)

    @staticmethod
    def _message(body: dict[str, Any]) -> str | None:
        message = body.get("message")
        if message is not None and not isinstance(message, str):
            raise InvalidArgument("message must be a string")
        return message or None

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        """TASK.CANCEL: ``{"message": …}`` optional."""
        store = self.server.store

        def run(owner: str, task_id: str, body: dict[str, Any]) -> None:
            store.cancel(owner, task_id, self._message(body))

        return await self._act(request, "cancel", run)

    async def cancel_request(self, request: web.Request) -> web.StreamResponse:
        """TASK.CANCEL … REQUEST: ``{"message": …}`` optional."""
        store = self.server.store

        def run(owner: str, task_id: str, body: dict[str, Any]) -> None:
            store.request_cancel(owner, task_id, self._message(body))

        return await self._act(request, "cancel-request", run)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        """TASK.ANSWER: ``{"answers": {"<key>": <response object>, …}}``."""
        store = self.server.store

        def run(owner: str, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
            answers = body.get("answers")
            if not isinstance(answers, dict) or not answers:
                raise InvalidArgument("answers must be a JSON object of key -> response")
            pairs: list[tuple[str, bytes | str]] = [
                (str(key), json.dumps(value)) for key, value in answers.items()
            ]
            return {"accepted": store.answer(owner, task_id, pairs)}

        return await self._act(request, "answer", run)

    # -- the live feed -----------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: ``hello``, ``counts``, ``tasks`` (changes: 0.1 s after a
        quiet spell, at most every 0.8 s), ``stats`` (every second), ``reset`` (reload the
        list)."""
        try:
            identity, owner = self._who(request)
        except OwnerRefused as e:
            return _error(e.status, str(e))
        response = web.StreamResponse(
            headers={**_SECURITY_HEADERS, "Content-Type": "text/event-stream"}
        )
        await response.prepare(request)
        feed = self.feed
        stream = feed.open(identity, owner)
        try:
            await response.write(b"retry: 1000\n\n")
            while True:
                await stream.wake.wait()
                if stream.closed:
                    break
                await response.write(stream.take())
            await response.write_eof()
        except ConnectionError:
            pass  # the page went away
        finally:
            feed.close(stream)
        return response
