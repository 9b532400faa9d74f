"""The province → district → commune tree and lookups over it.

Pure: built once from the validated settings and passed around, so level
resolution, planning and routing never touch the config file or the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum


class AreaKind(StrEnum):
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"


@dataclass(frozen=True)
class Station:
    """A commune's radio station: the peer that fetches playlists."""

    code: str
    name: str


@dataclass(frozen=True)
class Area:
    """One administrative unit; `ladder` is already resolved from its ancestors."""

    code: str
    name: str
    kind: AreaKind
    parent: str | None
    ladder: str
    languages: tuple[str, ...] = ("vi",)
    station: Station | None = None
    level: str | None = None  # the level in force before anyone sets one


class UnknownArea(LookupError):
    """Raised for an area code the registry does not hold; lists the valid codes."""

    def __init__(self, code: str, known: Iterable[str]) -> None:
        self.code = code
        self.known = sorted(known)
        super().__init__(f"unknown area {code!r}; known areas: {', '.join(self.known)}")


@dataclass(frozen=True)
class AreaRegistry:
    """All areas by code, with the tree walks the rest of the code needs."""

    areas: dict[str, Area]
    _children: dict[str, tuple[str, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        children: dict[str, list[str]] = {code: [] for code in self.areas}
        for area in self.areas.values():
            if area.parent is not None:
                children[area.parent].append(area.code)
        object.__setattr__(self, "_children", {k: tuple(v) for k, v in children.items()})

    def get(self, code: str) -> Area:
        try:
            return self.areas[code]
        except KeyError:
            raise UnknownArea(code, self.areas) from None

    def __contains__(self, code: object) -> bool:
        return code in self.areas

    def all(self) -> list[Area]:
        """Every area, parents before their children (tree order)."""
        return list(self._walk([a.code for a in self.areas.values() if a.parent is None]))

    def children(self, code: str) -> list[Area]:
        self.get(code)
        return [self.areas[c] for c in self._children[code]]

    def ancestors(self, code: str) -> list[Area]:
        """The chain above `code`, nearest first."""
        chain: list[Area] = []
        parent = self.get(code).parent
        while parent is not None:
            area = self.areas[parent]
            chain.append(area)
            parent = area.parent
        return chain

    def descendants(self, code: str) -> list[Area]:
        self.get(code)
        return list(self._walk(self._children[code]))

    def communes_under(self, code: str) -> list[Area]:
        """The communes an area covers; a commune covers itself."""
        area = self.get(code)
        if area.kind is AreaKind.COMMUNE:
            return [area]
        return [a for a in self.descendants(code) if a.kind is AreaKind.COMMUNE]

    def _walk(self, codes: Iterable[str]) -> Iterator[Area]:
        for code in codes:
            yield self.areas[code]
            yield from self._walk(self._children[code])
