"""Plugins: workloads and precision modes that installed packages declare as entry points.

A distribution declares them in the entry-point groups ``ampcore.workloads`` and
``ampcore.precisions``; each entry point names a ``Workload`` (or ``Precision``) object, or a
zero-argument function returning one or a list of them. They are loaded once, the first time
a registry table (``Registry``) is read, by the loader ``ampcore.core.registry`` installs with
``on_first_read``. Torch-free, and independent of the registry (which passes the types it
expects), so the two do not import each other.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterator, MutableMapping
from typing import TypeVar

from ampcore.core.errors import RegistrationError

WORKLOAD_GROUP = "ampcore.workloads"
PRECISION_GROUP = "ampcore.precisions"
BUILT_IN = "ampcore (built in)"

T = TypeVar("T")


class _Discovery:
    """Whether the plugins were loaded, and what stopped them."""

    def __init__(self) -> None:
        self.loader: Callable[[], None] | None = None
        self.started = False
        self.error: RegistrationError | None = None

    def ensure(self) -> None:
        """Load the plugins on the first call; that call raises what stopped them. Started
        before loading: a plugin that reads a registry while it loads sees it as it stands."""
        if self.started or self.loader is None:
            return
        self.started = True
        try:
            self.loader()
        except RegistrationError as exc:
            self.error = exc
            raise


_discovery = _Discovery()


def on_first_read(loader: Callable[[], None]) -> None:
    """Install what loads the plugins the first time a ``Registry`` is read."""
    _discovery.loader = loader


def check() -> None:
    """Load the plugins if no registry was read yet; raise what stopped them, every call (the
    faces call this first, so a broken plugin is a usage error before anything else)."""
    _discovery.ensure()
    if _discovery.error is not None:
        raise _discovery.error


class Registry(MutableMapping[str, T]):
    """A registry table, id -> entry in registration order, remembering where each entry came
    from. Reading it loads the installed plugins first (once); writing does not, so the
    built-ins and a conftest's registrations need no discovery."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "workload", "precision mode": for messages
        self._items: dict[str, T] = {}
        self._sources: dict[str, str] = {}

    def __getitem__(self, key: str) -> T:
        _discovery.ensure()
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        _discovery.ensure()
        return iter(self._items)

    def __len__(self) -> int:
        _discovery.ensure()
        return len(self._items)

    def __setitem__(self, key: str, value: T) -> None:
        self._items[key] = value

    def __delitem__(self, key: str) -> None:
        del self._items[key]
        self._sources.pop(key, None)

    def __repr__(self) -> str:
        return f"Registry({self.kind}: {', '.join(self._items)})"

    def add(self, key: str, value: T, source: str) -> None:
        """Register ``value`` under ``key``; an id another source registered is an error
        naming both. The same source may register it again (a conftest imported twice)."""
        earlier = self._sources.get(key)
        if key in self._items and earlier != source:
            raise RegistrationError(
                f"{self.kind} {key!r} is registered twice: by {earlier or 'an unknown source'} "
                f"and by {source}; rename one of them, or uninstall one")
        self._items[key] = value
        self._sources[key] = source

    def source(self, key: str) -> str | None:
        """Where the entry of ``key`` was registered; None: set directly (a test's setitem)."""
        return self._sources.get(key)


def describe(entry_point: importlib.metadata.EntryPoint) -> str:
    """"entry point 'toy = toy_pkg:workload' (group ampcore.workloads) of distribution toy-pkg
    1.0": how a message names where a plugin comes from."""
    dist = getattr(entry_point, "dist", None)
    owner = (f"distribution {dist.name} {dist.version}" if dist is not None
             else "an unknown distribution")
    return (f"entry point '{entry_point.name} = {entry_point.value}' (group {entry_point.group}) "
            f"of {owner}")


def _fix(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return ("fix it, or uninstall it" + (f" (pip uninstall {dist.name})" if dist is not None
                                         else ""))


def load_group(group: str, kind: type) -> Iterator[tuple[object, str]]:
    """Every ``kind`` object the installed entry points of ``group`` give, with where it comes
    from (``describe``); a RegistrationError names the entry point, its distribution and what
    went wrong (an import that fails, a function that raises, an object of another type)."""
    for entry_point in importlib.metadata.entry_points(group=group):
        source = describe(entry_point)
        try:
            found = entry_point.load()
            if not isinstance(found, kind) and callable(found):
                found = found()
        except Exception as exc:  # any failure of plugin code is reported as the plugin's
            raise RegistrationError(f"{source} failed to load: {type(exc).__name__}: {exc}; "
                                    f"{_fix(entry_point)}") from exc
        items = list(found) if isinstance(found, (list, tuple)) else [found]
        for item in items:
            if not isinstance(item, kind):
                raise RegistrationError(
                    f"{source} gave a {type(item).__name__}; expected an ampcore.api."
                    f"{kind.__name__}, or a zero-argument function returning one or a list of "
                    f"them; {_fix(entry_point)}")
            yield item, source
