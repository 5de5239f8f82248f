"""Flow control for one connection: when to stop reading a client, and when to read again.

Two reasons to stop, kept apart because either may end first: the client does not read its
replies (the transport's write buffer passed ``client_output_high_water``, so a pipelining
client cannot make us buffer without bound), or it used more than its share of the event
loop lately (uvloop reads a readable socket up to 32 times in one go, so one greedy client
could otherwise be served for hundreds of ms while everybody else waits).
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import Protocol

#: How long one client's commands may hold the event loop before the rest waits a turn.
RUN_BUDGET_S = 0.002
#: The window over which a client's share is counted.
WINDOW_S = 0.01


class Closing(Protocol):
    """The connection, as far as flow control cares: once it is closing (its last replies
    going out, what the client still sends read and dropped), reading is left alone."""

    closing: bool


class FlowControl:
    __slots__ = ("conn", "paused", "spent", "transport", "window", "yielded")

    def __init__(self, transport: asyncio.Transport, conn: Closing) -> None:
        self.transport = transport
        self.conn = conn
        self.paused = False  # the client is not reading its replies
        self.yielded = False  # paused for one loop turn, to let others run
        self.window = 0.0  # when the current window began (time.monotonic)
        self.spent = 0.0  # time spent running this client's commands in it

    def pause_writing(self) -> None:
        self.paused = True
        if not self.conn.closing:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if not self.conn.closing and not self.yielded:
            self.transport.resume_reading()

    def account(self, start: float) -> None:
        """Count the time since ``start`` (this turn's beginning); over the budget, stop
        reading for one loop turn."""
        now = monotonic()
        if start - self.window > WINDOW_S:
            self.window = start
            self.spent = now - start
        else:
            self.spent += now - start
        if self.spent > RUN_BUDGET_S and not (self.yielded or self.paused or self.conn.closing):
            self.yielded = True
            self.transport.pause_reading()
            asyncio.get_running_loop().call_soon(self.end_yield)

    def end_yield(self) -> None:
        self.yielded = False
        self.spent = 0.0
        if not self.paused and not self.conn.closing:
            self.transport.resume_reading()
