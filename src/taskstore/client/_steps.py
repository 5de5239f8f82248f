"""The client's logic once, its I/O twice.

Whatever needs the network (a command, ``from_url``'s probing, the Functions backend's wait
for a notification) is written once as a generator of *steps*: each step is a zero-argument
callable doing one I/O operation, the generator receives its result (or has its exception
thrown in) and returns the outcome. :func:`run` performs the steps blocking, :func:`run_async`
awaits them; :class:`io_method` turns such a generator method into a blocking method of
:class:`TaskClient` and a coroutine method of :class:`AsyncTaskClient`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Generator
from types import MethodType
from typing import Any, Concatenate, Generic, ParamSpec, TypeAlias, TypeVar, cast, overload

from redis import RedisError

from taskstore.client.errors import translate

T = TypeVar("T")
P = ParamSpec("P")
B = TypeVar("B", bound="Blocking")
A = TypeVar("A", bound="Awaiting")

Step: TypeAlias = Callable[[], Any]
Steps: TypeAlias = Generator[Step, Any, T]


async def run_async(steps: Steps[T]) -> T:
    """Perform ``steps``, awaiting those that return an awaitable; their outcome."""
    send: Callable[[Any], Step] = steps.send
    value: Any = None
    while True:
        try:
            step = send(value)
        except StopIteration as done:
            return cast(T, done.value)
        try:
            value = step()
            if inspect.isawaitable(value):
                value = await value
            send = steps.send
        except BaseException as e:
            value, send = e, steps.throw


def run(steps: Steps[T]) -> T:
    """Perform ``steps`` blocking, their outcome: :func:`run_async` without an event loop
    (blocking steps return no awaitable, so it finishes without ever suspending)."""
    coroutine = run_async(steps)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coroutine.close()
    raise RuntimeError("a blocking step returned an awaitable")


def translated(steps: Steps[T]) -> Steps[T]:
    """``steps`` with error replies raised as :mod:`taskstore.client.errors` classes."""
    try:
        return (yield from steps)
    except RedisError as e:
        err = translate(e)
        if err is None:
            raise
        raise err from None


class Blocking:
    """Base of a class whose :class:`io_method` methods block (on redis-py's ``redis``)."""

    @staticmethod
    def _close(resource: Any) -> Step:
        """The step that closes a redis-py client or pub/sub object."""
        return cast(Step, resource.close)


class Awaiting:
    """Base of a class whose :class:`io_method` methods are coroutines (``redis.asyncio``)."""

    @staticmethod
    def _close(resource: Any) -> Step:
        """The step that closes a ``redis.asyncio`` client or pub/sub object."""
        return cast(Step, resource.aclose)


class io_method(Generic[P, T]):
    """A method written as a generator of steps: it blocks on a :class:`Blocking` client and
    is a coroutine on an :class:`Awaiting` one (same signature, docstring and logic)."""

    def __init__(self, steps: Callable[Concatenate[Any, P], Steps[T]]) -> None:
        @functools.wraps(steps)
        def blocking(client: Any, /, *args: Any, **kwargs: Any) -> Any:
            return run(steps(client, *args, **kwargs))

        @functools.wraps(steps)
        async def awaiting(client: Any, /, *args: Any, **kwargs: Any) -> Any:
            return await run_async(steps(client, *args, **kwargs))

        self._blocking, self._awaiting = blocking, awaiting

    @overload
    def __get__(self, client: None, cls: type[Blocking]) -> Callable[Concatenate[Any, P], T]: ...
    @overload
    def __get__(
        self, client: None, cls: type[Awaiting]
    ) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(self, client: Blocking, cls: Any = None) -> Callable[P, T]: ...
    @overload
    def __get__(self, client: Awaiting, cls: Any = None) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(
        self, client: object, cls: Any = None
    ) -> Callable[P, T | Coroutine[Any, Any, T]]: ...
    def __get__(self, client: Any, cls: Any = None) -> Any:
        kind = type(client) if cls is None else cls
        method = self._awaiting if issubclass(kind, Awaiting) else self._blocking
        return method if client is None else MethodType(method, client)


class io_classmethod(Generic[P]):
    """A constructor written as a generator of steps that returns an instance of the class
    it is called on: blocking on a :class:`Blocking` class, a coroutine on an :class:`Awaiting`
    one."""

    def __init__(self, steps: Callable[Concatenate[Any, P], Steps[Any]]) -> None:
        self._method = io_method(steps)

    @overload
    def __get__(self, client: object, cls: type[B]) -> Callable[P, B]: ...
    @overload
    def __get__(self, client: object, cls: type[A]) -> Callable[P, Coroutine[Any, Any, A]]: ...
    def __get__(self, client: object, cls: type[Any]) -> Any:
        return MethodType(self._method.__get__(None, cls), cls)
