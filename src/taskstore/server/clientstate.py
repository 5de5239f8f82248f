"""What one client's session holds, apart from how its bytes are framed and paced
(server/connection.py, server/flow.py): its identity and rights, the RESP version and MCP
generation its replies use, a MULTI being queued, its subscriptions, a blocked command, and
what CLIENT SETNAME / SETINFO told us. RESET puts it back as a new connection has it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskstore.server.commands.spec import Command, CommandError
from taskstore.server.users import User, valid_name

if TYPE_CHECKING:
    from taskstore.protocol import RequestReader
    from taskstore.server.app import Server
    from taskstore.server.blocking import Waiter

NOAUTH = "NOAUTH Authentication required."


class ClientState:
    __slots__ = (
        "account",
        "authenticated",
        "blocked",
        "channels",
        "db",
        "in_exec",
        "lib_name",
        "lib_ver",
        "multi",
        "multi_dirty",
        "name",
        "no_evict",
        "no_touch",
        "password_auth",
        "patterns",
        "resp3",
        "restricted",
        "user",
        "v2",
    )

    # what the connection this state belongs to provides
    server: Server
    reader: RequestReader

    def start_session(self) -> None:
        """The state of a new connection."""
        self.name = ""
        self.lib_name = ""
        self.lib_ver = ""
        self.db = 0
        self.resp3 = False
        # tasks render in MCP 2026-07-28 form (docs/commands.md, 2026-07-28), else 2025-11-25
        self.v2 = self.server.config.mcp_version == "2026-07-28"
        self.user = "default"
        self.account: User | None = None  # the configured user, None for "default"
        self.authenticated = not self.server.config.requirepass
        self.password_auth = False  # authenticated against a configured password
        self.multi: list[tuple[Command, list[bytes]]] | None = None
        self.multi_dirty = False
        self.in_exec = False  # running EXEC's queue: blocking commands must not wait
        self.blocked: Waiter | None = None
        self.channels: set[bytes] = set()
        self.patterns: set[bytes] = set()
        # RESP2 and subscribed: only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING, QUIT, RESET run
        self.restricted = False
        self.no_evict = False
        self.no_touch = False

    def reset_session(self) -> None:
        """RESET: leave MULTI and every subscription, forget the name, the protocol and the
        identity (with ``requirepass``, authenticate again). CLIENT SETINFO's library name
        and version stay, as in Redis."""
        self.server.hub.drop(self)  # type: ignore[arg-type]  # self is the Connection
        lib = self.lib_name, self.lib_ver
        self.start_session()
        self.lib_name, self.lib_ver = lib
        self.reader.unauthenticated = not self.authenticated

    # -- identity ---------------------------------------------------------

    @property
    def owner(self) -> str:
        """Whose tasks this connection sees (docs/architecture.md, Owners)."""
        if self.user == "default":
            return self.server.security.default_owner
        return self.user

    @property
    def is_admin(self) -> bool:
        """The default user holds every right, as in Redis, once it may act at all;
        configured users only with the admin permission."""
        account = self.account
        if account is not None:
            return account.is_admin
        return self.server.security.allow_anonymous or self.password_auth

    def require_admin(self, name: str) -> None:
        if not self.is_admin:
            if self.user == "default":
                raise CommandError(NOAUTH)  # anonymous use is off: authenticate first
            raise CommandError(
                f"NOPERM User {self.user} has no permissions to run the '{name}' command"
            )

    def set_authenticated(self, account: User | None, *, with_password: bool) -> None:
        self.account = account
        self.user = "default" if account is None else account.name
        self.authenticated = True
        self.password_auth = with_password
        self.reader.unauthenticated = False

    def update_restricted(self) -> None:
        """RESP2 clients with subscriptions may only run the pub/sub commands (Redis's rule)."""
        self.restricted = bool(self.channels or self.patterns) and not self.resp3

    def task_owner(self) -> str:
        """The owner TASK commands act for; refuses anonymous use when it is off."""
        user = self.user
        if user == "default":
            security = self.server.security
            if not (security.allow_anonymous or self.password_auth):
                raise CommandError(NOAUTH)
            return security.default_owner
        return user

    def impersonate(self, owner: str) -> str:
        """``OWNER <id>``: only identities with the impersonate permission may act for others."""
        self.task_owner()
        account = self.account
        if account is None or not account.can_impersonate:
            raise CommandError(
                f"NOPERM User {self.user} has no permissions to act as another owner"
            )
        if not valid_name(owner):
            raise CommandError("ERR OWNER must be 1-256 printable ASCII characters without spaces")
        return owner
