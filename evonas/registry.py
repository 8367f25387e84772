"""A tiny name -> object registry filled by decorator; duplicate names raise."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects. ``kind`` names the registry in error messages."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T) -> T:
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{self.kind}: name must be a non-empty string, got {name!r}")
        if name in self._items:
            raise RegistryError(f"{self.kind}: name {name!r} is already registered")
        self._items[name] = obj
        return obj

    def decorator(self, name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            return self.register(name, obj)
        return wrap

    def class_decorator(self, name: str, attr: str):
        """Decorator for classes: set ``cls.<attr> = name``, then register ``cls``."""
        def wrap(cls):
            setattr(cls, attr, name)
            return self.register(name, cls)
        return wrap

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise RegistryError(f"unknown {self.kind} {name!r} (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list[str]:
        return sorted(self._items)
