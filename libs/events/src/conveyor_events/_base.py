"""The base of every event: a frozen pydantic model that keeps fields it does not know."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_EVENT_TYPES: dict[str, type[Event]] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}
_REGISTRATIONS = [0]
"""How many classes have been registered: see `registrations`."""


class Event(BaseModel):
    """An immutable fact about a run, named in the past tense.

    `schema_version` is the version of the class; events written by a newer schema are still read, and fields
    this version does not know are kept (``extra="allow"``) so that nothing is dropped when re-encoded.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    schema_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _EVENT_TYPES[cls.__name__] = cls
        _REGISTRATIONS[0] += 1

    @classmethod
    def event_type(cls) -> str:
        return cls.__name__


class RunEvent(Event):
    """An event of one run; the run id is also the event's stream."""

    run_id: str


class UnknownEvent(Event):
    """An event whose type this build does not know: read and carried, never dropped."""


def event_class(event_type: str) -> type[Event] | None:
    """The class registered for `event_type`, or None."""
    cls = _EVENT_TYPES.get(event_type)
    return None if cls is UnknownEvent else cls


def registrations() -> int:
    """How many classes have been registered (a name registered again counts again): what is built from the
    registry is built again once this grows."""
    return _REGISTRATIONS[0]


def event_classes() -> dict[str, type[Event]]:
    """Each registered name and its class, `UnknownEvent` left out."""
    registry = dict(_EVENT_TYPES)  # one copy: another thread may register a class meanwhile
    return {name: cls for name, cls in registry.items() if cls is not UnknownEvent}


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function that turns the data of `event_type` at `from_version` into `from_version + 1`."""

    def register(function: Upcaster) -> Upcaster:
        _UPCASTERS[(event_type, from_version)] = function
        return function

    return register


def upcast(event_type: str, version: int, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Apply the registered upcasters from `version` up to the current version of `event_type`."""
    cls = event_class(event_type)
    if cls is None:
        return version, data
    while version < cls.schema_version:
        step = _UPCASTERS.get((event_type, version))
        if step is None:
            raise LookupError(f"no upcaster for {event_type} from schema version {version}")
        data = step(dict(data))
        version += 1
    return version, data
