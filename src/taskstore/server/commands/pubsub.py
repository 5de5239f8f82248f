"""SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH and PUBSUB (the hub: server/hub.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskstore.protocol import Push, Replies
from taskstore.server.commands.spec import (
    Arg,
    Command,
    CommandError,
    Handler,
    command,
    container,
)
from taskstore.server.glob import glob_match
from taskstore.server.hub import TASK_CHANNEL_PREFIX, may_read_task_channel

if TYPE_CHECKING:
    from taskstore.server.connection import Connection

_NOPERM_CHANNEL = "NOPERM No permissions to access a channel"
_GROUP = "pubsub"


def _count(conn: Connection) -> int:
    return len(conn.channels) + len(conn.patterns)


def _subscription(
    name: str, arity: int, summary: str, arguments: tuple[Arg, ...]
) -> Callable[[Handler], Command]:
    """The spec shared by (P)SUBSCRIBE and (P)UNSUBSCRIBE."""
    return command(
        name,
        arity,
        flags=("pubsub", "noscript", "loading", "stale"),
        group=_GROUP,
        summary=summary,
        since="2.0.0",
        complexity=f"O(N) where N is the number of {arguments[0].name}s",
        arguments=arguments,
        categories=("pubsub", "slow"),
    )


def _change(
    conn: Connection, verb: bytes, change: Callable[[Connection, bytes], None], names: list[bytes]
) -> Replies:
    """Apply ``change`` to each name; one confirmation each (one with a null name when there
    was none to leave), as Redis sends them."""
    replies = Replies()
    for name in names:
        change(conn, name)
        replies.append(Push([verb, name, _count(conn)]))
    if not replies:
        replies.append(Push([verb, None, _count(conn)]))
    conn.update_restricted()
    return replies


@_subscription(
    "subscribe",
    -2,
    "Listens for messages published to channels; tasks:<owner> carries task changes.",
    (Arg("channel", multiple=True),),
)
def subscribe(conn: Connection, args: list[bytes]) -> Any:
    channels = args[1:]
    for channel in channels:  # all or nothing: check every channel first
        if channel.startswith(TASK_CHANNEL_PREFIX) and not may_read_task_channel(conn, channel):
            raise CommandError(_NOPERM_CHANNEL)
    return _change(conn, b"subscribe", conn.server.hub.subscribe, channels)


@_subscription(
    "unsubscribe",
    -1,
    "Stops listening to messages posted to channels (all of them when none is given).",
    (Arg("channel", optional=True, multiple=True),),
)
def unsubscribe(conn: Connection, args: list[bytes]) -> Any:
    channels = args[1:] or sorted(conn.channels)
    return _change(conn, b"unsubscribe", conn.server.hub.unsubscribe, channels)


@_subscription(
    "psubscribe",
    -2,
    "Listens for messages published to channels that match patterns.",
    (Arg("pattern", "pattern", multiple=True),),
)
def psubscribe(conn: Connection, args: list[bytes]) -> Any:
    # Patterns are allowed; task notifications are filtered per subscriber when delivered.
    return _change(conn, b"psubscribe", conn.server.hub.psubscribe, args[1:])


@_subscription(
    "punsubscribe",
    -1,
    "Stops listening to messages published to channels that match patterns.",
    (Arg("pattern", "pattern", optional=True, multiple=True),),
)
def punsubscribe(conn: Connection, args: list[bytes]) -> Any:
    patterns = args[1:] or sorted(conn.patterns)
    return _change(conn, b"punsubscribe", conn.server.hub.punsubscribe, patterns)


@command(
    "publish",
    3,
    flags=("pubsub", "loading", "stale", "fast"),
    group=_GROUP,
    summary="Posts a message to a channel (not to tasks:*, which the server alone publishes).",
    since="2.0.0",
    complexity="O(N+M): N clients on the channel, M pattern subscriptions",
    arguments=(Arg("channel"), Arg("message")),
    categories=("pubsub", "fast"),
)
def publish(conn: Connection, args: list[bytes]) -> Any:
    channel = args[1]
    if channel.startswith(TASK_CHANNEL_PREFIX):
        raise CommandError(_NOPERM_CHANNEL)
    return conn.server.hub.publish(channel, args[2])


@command(
    "channels",
    -2,
    summary="Returns the active channels (those your identity may see).",
    arguments=(Arg("pattern", "pattern", optional=True),),
)
def pubsub_channels(conn: Connection, args: list[bytes]) -> Any:
    if len(args) > 3:
        raise CommandError(  # Redis's wording for this subcommand
            "ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP."
        )
    pattern = args[2] if len(args) == 3 else b"*"
    return [
        ch
        for ch in conn.server.hub.channels
        if glob_match(pattern, ch)
        and (not ch.startswith(TASK_CHANNEL_PREFIX) or may_read_task_channel(conn, ch))
    ]


@command(
    "numsub",
    -2,
    summary="Returns the count of subscribers of channels.",
    arguments=(Arg("channel", optional=True, multiple=True),),
)
def pubsub_numsub(conn: Connection, args: list[bytes]) -> Any:
    channels = conn.server.hub.channels
    out: list[Any] = []
    for ch in args[2:]:
        visible = not ch.startswith(TASK_CHANNEL_PREFIX) or may_read_task_channel(conn, ch)
        out += [ch, len(channels.get(ch, ())) if visible else 0]
    return out


@command("numpat", 2, summary="Returns a count of unique pattern subscriptions.")
def pubsub_numpat(conn: Connection, args: list[bytes]) -> Any:
    return len(conn.server.hub.patterns)


pubsub = container(
    "pubsub",
    (pubsub_channels, pubsub_numsub, pubsub_numpat),
    group=_GROUP,
    summary="A container for Pub/Sub commands.",
    help=[
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels.",
    ],
)


#: the family, in the order COMMAND lists it
COMMANDS = (subscribe, unsubscribe, psubscribe, punsubscribe, publish, pubsub)
