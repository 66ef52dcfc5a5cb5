"""A cached attribute for the message views, cheaper than functools.cached_property.

On Python 3.11 `functools.cached_property` takes a lock on every first access; messages
are never shared between threads while they are being parsed, and the value is computed
from immutable data, so a plain non-data descriptor is enough: after the first access the
value sits in the instance `__dict__` and later reads are ordinary attribute reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class lazy(Generic[T]):  # lower case: used as a decorator, like cached_property
    __slots__ = ("_func", "_name")

    def __init__(self, func: Callable[[Any], T]) -> None:
        self._func = func
        self._name = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> lazy[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> T | lazy[T]:
        if obj is None:
            return self
        value = self._func(obj)
        obj.__dict__[self._name] = value
        return value


class BoundedCache(Generic[T]):
    """A dict of parsed header values keyed by their text, emptied when full.

    Real traffic repeats the same URIs and addresses (a phone's own AOR, the switch's
    domain); the parsed objects are immutable so sharing them is safe, and emptying the
    dict when it fills keeps memory bounded under hostile traffic.
    """

    __slots__ = ("_data", "_max", "get")

    def __init__(self, max_entries: int = 2048) -> None:
        self._data: dict[str, T] = {}
        self._max = max_entries
        self.get = self._data.get

    def put(self, key: str, value: T) -> None:
        if len(self._data) >= self._max:
            self._data.clear()
        self._data[key] = value
