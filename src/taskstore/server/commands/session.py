"""Session commands: what clients send on connect and about their connection (PING, HELLO,
AUTH, SELECT, CLIENT, ACL, RESET, QUIT…)."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any

from taskstore.protocol import OK, PONG, ErrorReply, SimpleString, Verbatim
from taskstore.server.commands.spec import (
    Arg,
    CommandError,
    command,
    container,
    not_integer,
    syntax_error,
)
from taskstore.server.users import User

if TYPE_CHECKING:
    from taskstore.server.connection import Connection

REDIS_VERSION = "7.4.0"
_WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


@command(
    "ping",
    -1,
    flags=("fast", "sentinel"),
    summary="Returns the server's liveliness response.",
    arguments=(Arg("message", optional=True),),
    categories=("fast", "connection"),
)
def ping(conn: Connection, args: list[bytes]) -> Any:
    if conn.restricted and len(args) <= 2:  # RESP2 subscribed mode answers with an array
        return [b"pong", args[1] if len(args) == 2 else b""]
    if len(args) == 1:
        return PONG
    if len(args) == 2:
        return args[1]
    raise CommandError("ERR wrong number of arguments for 'ping' command")


@command(
    "echo",
    2,
    flags=("fast",),
    summary="Returns the given string.",
    arguments=(Arg("message"),),
    categories=("fast", "connection"),
)
def echo(conn: Connection, args: list[bytes]) -> Any:
    return args[1]


@command(
    "quit",
    -1,
    flags=("allow_busy", "noscript", "loading", "stale", "fast", "no_auth"),
    summary="Closes the connection.",
    noauth=True,
    categories=("fast", "connection"),
)
def quit_(conn: Connection, args: list[bytes]) -> Any:
    conn.closing = True  # the reply is written, then the connection closed
    return OK


@command(
    "reset",
    1,
    flags=("noscript", "loading", "stale", "fast", "no_auth", "allow_busy"),
    summary="Resets the connection.",
    since="6.2.0",
    noauth=True,
    categories=("fast", "connection"),
)
def reset(conn: Connection, args: list[bytes]) -> Any:
    conn.reset_session()
    return SimpleString("RESET")


def authenticate(conn: Connection, name: str, password: bytes) -> None:
    """Switch the connection to ``name`` if the password is right, else WRONGPASS."""
    server = conn.server
    required = server.config.requirepass
    if name == "default":
        # without requirepass the default user has no password: any password is accepted
        ok = not required or hmac.compare_digest(
            hashlib.sha256(password).digest(),
            hashlib.sha256(required.encode("utf-8", "surrogateescape")).digest(),
        )
        account = None
    else:
        account = server.config.users.get(name)
        # an unknown user costs the same hash and comparison as a known one
        ok = (account or _NOBODY).check(password) and account is not None
    if not ok:
        server.stats["auth_failures"] += 1
        raise CommandError(_WRONGPASS)
    # the default user counts as password-authenticated only when it has a password
    conn.set_authenticated(account, with_password=account is not None or bool(required))


_NOBODY = User("", hashlib.sha256(b"\x00 no such user").digest(), enabled=False)


@command(
    "auth",
    -2,
    flags=("noscript", "loading", "stale", "fast", "no_auth", "sentinel", "allow_busy"),
    summary="Authenticates the connection.",
    arguments=(Arg("username", optional=True), Arg("password")),
    noauth=True,
    categories=("fast", "connection"),
)
def auth(conn: Connection, args: list[bytes]) -> Any:
    if len(args) > 3:
        raise syntax_error()
    if len(args) == 2:
        if not conn.server.config.requirepass:
            raise CommandError(
                "ERR AUTH <password> called without any password configured for the default "
                "user. Are you sure your configuration is correct?"
            )
        authenticate(conn, "default", args[1])
    else:
        authenticate(conn, args[1].decode("utf-8", "surrogateescape"), args[2])
    return OK


@command(
    "hello",
    -1,
    flags=("noscript", "loading", "stale", "fast", "no_auth", "sentinel", "allow_busy"),
    summary="Handshakes with the Redis server.",
    since="6.0.0",
    arguments=(
        Arg(
            "arguments",
            "block",
            optional=True,
            arguments=(
                Arg("protover", "integer"),
                Arg(
                    "username-password",
                    "block",
                    token="AUTH",
                    optional=True,
                    arguments=(Arg("username"), Arg("password")),
                ),
                Arg("clientname", token="SETNAME", optional=True),
            ),
        ),
    ),
    noauth=True,
    categories=("fast", "connection"),
)
def hello(conn: Connection, args: list[bytes]) -> Any:
    resp3 = conn.resp3
    if len(args) >= 2:
        try:
            ver = int(args[1])
        except ValueError:
            raise CommandError("ERR Protocol version is not an integer or out of range") from None
        if ver < 2 or ver > 3:
            raise CommandError("NOPROTO unsupported protocol version")
        resp3 = ver == 3
    user: str | None = None
    password = b""
    name: str | None = None
    i = 2
    while i < len(args):
        opt = args[i].lower()
        more = len(args) - i - 1
        if opt == b"auth" and more >= 2:
            user = args[i + 1].decode("utf-8", "surrogateescape")
            password = args[i + 2]
            i += 3
        elif opt == b"setname" and more >= 1:
            name = _valid_name(args[i + 1])
            i += 2
        else:
            raise CommandError(
                "ERR Syntax error in HELLO option '%s'" % args[i].decode("utf-8", "replace")
            )
    if user is not None:
        authenticate(conn, user, password)
    if not conn.authenticated:
        raise CommandError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
            "select the RESP protocol version at the same time"
        )
    if name is not None:
        conn.name = name
    conn.resp3 = resp3
    conn.update_restricted()
    return {
        "server": "redis",
        "version": REDIS_VERSION,
        "proto": 3 if resp3 else 2,
        "id": conn.id,
        "mode": "standalone",
        "role": "master",
        "modules": [],
    }


@command(
    "select",
    2,
    flags=("loading", "stale", "fast"),
    summary="Changes the selected database.",
    arguments=(Arg("index", "integer"),),
    categories=("keyspace", "fast"),
)
def select(conn: Connection, args: list[bytes]) -> Any:
    try:
        index = int(args[1])
    except ValueError:
        raise not_integer() from None
    if index != 0:
        raise CommandError("ERR DB index is out of range")
    return OK


def _valid_name(raw: bytes, what: str = "Client names") -> str:
    # Redis allows only printable ASCII without spaces in names.
    if any(c < 0x21 or c > 0x7E for c in raw):
        raise CommandError(f"ERR {what} cannot contain spaces, newlines or special characters.")
    return raw.decode()


# -- CLIENT -----------------------------------------------------------------


_CLIENT_HELP = [
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>,",
    "    USER <username>, SKIPME (YES|NO).",
    "LIST [options ...]",
    "    Return information about client connections. Options: TYPE normal, ID id [id ...].",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "NO-EVICT (ON|OFF)",
    "    Accepted for compatibility; nothing is evicted.",
    "NO-TOUCH (ON|OFF)",
    "    Accepted for compatibility.",
]


@command("id", 2, summary="Returns the unique client ID of the connection.")
def client_id(conn: Connection, args: list[bytes]) -> Any:
    return conn.id


@command(
    "setname",
    3,
    summary="Sets the connection name.",
    arguments=(Arg("connection-name"),),
)
def client_setname(conn: Connection, args: list[bytes]) -> Any:
    conn.name = _valid_name(args[2])
    return OK


@command("getname", 2, summary="Returns the name of the connection.")
def client_getname(conn: Connection, args: list[bytes]) -> Any:
    return conn.name or None


@command(
    "setinfo",
    4,
    summary="Sets information specific to the client or connection.",
    since="7.2.0",
    arguments=(
        Arg(
            "attr",
            "oneof",
            arguments=(Arg("libname", token="LIB-NAME"), Arg("libver", token="LIB-VER")),
        ),
    ),
)
def client_setinfo(conn: Connection, args: list[bytes]) -> Any:
    attr = args[2].lower()
    if attr == b"lib-name":
        conn.lib_name = _valid_name(args[3], "lib-name")
    elif attr == b"lib-ver":
        conn.lib_ver = _valid_name(args[3], "lib-ver")
    else:
        raise CommandError("ERR Unrecognized option '%s'" % args[2].decode("utf-8", "replace"))
    return OK


@command("info", 2, summary="Returns information about the connection.")
def client_info(conn: Connection, args: list[bytes]) -> Any:
    return Verbatim(conn.info_line() + "\n")


@command(
    "list",
    -2,
    summary="Lists open connections.",
    arguments=(
        Arg("client-type", token="TYPE", optional=True),
        Arg("client-id", "integer", token="ID", optional=True, multiple=True),
    ),
    admin=True,  # other clients' addresses and users are an admin's business, as in Redis
)
def client_list(conn: Connection, args: list[bytes]) -> Any:
    clients = list(conn.server.clients.values())
    i = 2
    while i < len(args):
        opt = args[i].lower()
        if opt == b"type" and i + 1 < len(args):
            kind = args[i + 1].lower()
            if kind not in (b"normal", b"master", b"replica", b"slave", b"pubsub"):
                raise CommandError(
                    "ERR Unknown client type '%s'" % args[i + 1].decode("utf-8", "replace")
                )
            if kind == b"pubsub":
                clients = [c for c in clients if c.channels or c.patterns]
            elif kind == b"normal":
                clients = [c for c in clients if not (c.channels or c.patterns)]
            else:
                clients = []
            i += 2
        elif opt == b"id" and i + 1 < len(args):
            wanted = set()
            for raw in args[i + 1 :]:
                try:
                    wanted.add(int(raw))
                except ValueError:
                    raise CommandError("ERR Invalid client ID") from None
            clients = [c for c in clients if c.id in wanted]
            break
        else:
            raise syntax_error()
    return Verbatim("".join(c.info_line() + "\n" for c in clients))


@command(
    "kill",
    -3,
    summary="Terminates open connections.",
    arguments=(
        Arg(
            "filter",
            "oneof",
            arguments=(
                Arg("old-format", token=None),
                Arg(
                    "new-format",
                    "oneof",
                    multiple=True,
                    arguments=(
                        Arg("client-id", "integer", token="ID", optional=True),
                        Arg("ip:port", token="ADDR", optional=True),
                        Arg("ip:port", token="LADDR", optional=True),
                        Arg("username", token="USER", optional=True),
                        Arg("skipme", token="SKIPME", optional=True),
                    ),
                ),
            ),
        ),
    ),
    admin=True,
)
def client_kill(conn: Connection, args: list[bytes]) -> Any:
    clients = conn.server.clients.values()
    if len(args) == 3:  # old form: CLIENT KILL addr
        addr = args[2].decode("utf-8", "replace")
        for c in list(clients):
            if c.addr == addr:
                c.close()
                return OK
        raise CommandError("ERR No such client")
    if len(args) % 2:
        raise syntax_error()
    filters: list[tuple[bytes, bytes]] = [
        (args[i].lower(), args[i + 1]) for i in range(2, len(args), 2)
    ]
    skipme = True
    matched = list(clients)
    for key, value in filters:
        text = value.decode("utf-8", "replace")
        if key == b"id":
            try:
                cid = int(value)
            except ValueError:
                raise CommandError("ERR client-id should be greater than 0") from None
            if cid <= 0:
                raise CommandError("ERR client-id should be greater than 0")
            matched = [c for c in matched if c.id == cid]
        elif key == b"addr":
            matched = [c for c in matched if c.addr == text]
        elif key == b"laddr":
            matched = [c for c in matched if c.laddr == text]
        elif key == b"user":
            matched = [c for c in matched if c.user == text]
        elif key == b"skipme":
            if value.lower() not in (b"yes", b"no"):
                raise syntax_error()
            skipme = value.lower() == b"yes"
        elif key == b"type":
            if value.lower() != b"normal":
                matched = []
        else:
            raise syntax_error()
    killed = 0
    for c in matched:
        if c is conn and skipme:
            continue
        c.close()
        killed += 1
    return killed


@command(
    "unblock",
    -3,
    summary="Unblocks a client blocked in TASK.RESULT BLOCK or TASK.WAIT.",
    since="5.0.0",
    arguments=(
        Arg("client-id", "integer"),
        Arg(
            "unblock-type",
            "oneof",
            optional=True,
            arguments=(
                Arg("timeout", "pure-token", token="TIMEOUT"),
                Arg("error", "pure-token", token="ERROR"),
            ),
        ),
    ),
    admin=True,
)
def client_unblock(conn: Connection, args: list[bytes]) -> Any:
    if len(args) > 4:
        raise syntax_error()
    try:
        cid = int(args[2])
    except ValueError:
        raise not_integer() from None
    mode = args[3].lower() if len(args) == 4 else b"timeout"
    if mode not in (b"timeout", b"error"):
        raise CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    target = conn.server.clients.get(cid)
    if target is None or target.blocked is None:
        return 0
    reply = (
        ErrorReply("UNBLOCKED client unblocked via CLIENT UNBLOCK") if mode == b"error" else None
    )
    return 1 if conn.server.waiters.wake(target.blocked, reply) else 0


def _on_off(conn: Connection, args: list[bytes]) -> bool:
    value = args[2].lower()
    if value not in (b"on", b"off"):
        raise syntax_error()
    return value == b"on"


@command("no-evict", 3, summary="Accepted for compatibility.", since="7.0.0")
def client_no_evict(conn: Connection, args: list[bytes]) -> Any:
    conn.no_evict = _on_off(conn, args)
    return OK


@command("no-touch", 3, summary="Accepted for compatibility.", since="7.2.0")
def client_no_touch(conn: Connection, args: list[bytes]) -> Any:
    conn.no_touch = _on_off(conn, args)
    return OK


client = container(
    "client",
    (
        client_id,
        client_setname,
        client_getname,
        client_setinfo,
        client_info,
        client_list,
        client_kill,
        client_unblock,
        client_no_evict,
        client_no_touch,
    ),
    group="connection",
    summary="A container for client connection commands.",
    help=_CLIENT_HELP,
)


# -- ACL ----------------------------------------------------------------------


@command("whoami", 2, summary="Returns the authenticated username of the connection.")
def acl_whoami(conn: Connection, args: list[bytes]) -> Any:
    return conn.user


@command("users", 2, summary="Lists all users: default and the configured ones.", admin=True)
def acl_users(conn: Connection, args: list[bytes]) -> Any:
    return ["default", *sorted(conn.server.config.users)]


acl = container(
    "acl",
    (acl_whoami, acl_users),
    group="server",
    summary="A container for Access List Control commands.",
    help=[
        "WHOAMI",
        "    Return the current connection username.",
        "USERS",
        "    List all the registered usernames (admin).",
    ],
)


@command(
    "time",
    1,
    flags=("loading", "stale", "fast"),
    group="server",
    summary="Returns the server time.",
    since="2.6.0",
    categories=("fast",),
)
def time_(conn: Connection, args: list[bytes]) -> Any:
    now = time.time()
    secs = int(now)
    return [str(secs).encode(), str(int((now - secs) * 1_000_000)).encode()]


#: the family, in the order COMMAND lists it
COMMANDS = (ping, echo, quit_, reset, auth, hello, select, client, acl, time_)
