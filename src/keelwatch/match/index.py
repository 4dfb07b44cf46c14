"""An in-memory advisory index: the store's ``advisories_for`` without a database.

For tests, benchmarks and one-off scans of parsed feeds. ``AdvisoryIndex(advisories)`` has the two
``Store`` methods the matcher uses — ``advisories_for(ecosystem, names)`` and ``ecosystems()``
(which ecosystems it holds any data for) — and is itself callable as a lookup. Keyed like the
store's index: (OSV ecosystem as published, ``normalise_name``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from keelwatch.model import Advisory
from keelwatch.names import normalise_name


class AdvisoryIndex:
    def __init__(self, advisories: Iterable[Advisory] = ()) -> None:
        self._by_key: dict[tuple[str, str], list[Advisory]] = defaultdict(list)
        self._ecosystems: set[str] = set()
        self.count = 0
        self.add(advisories)

    def add(self, advisories: Iterable[Advisory]) -> None:
        for advisory in advisories:
            self.count += 1
            keys = {(a.ecosystem, normalise_name(a.ecosystem, a.name)) for a in advisory.affected}
            for key in sorted(keys):
                self._by_key[key].append(advisory)
                self._ecosystems.add(key[0])

    def advisories_for(self, ecosystem: str, names: Sequence[str]) -> list[Advisory]:
        seen: set[int] = set()
        out: list[Advisory] = []
        for name in names:
            for advisory in self._by_key.get((ecosystem, name), ()):
                if id(advisory) not in seen:
                    seen.add(id(advisory))
                    out.append(advisory)
        return out

    __call__ = advisories_for

    def ecosystems(self) -> frozenset[str]:
        return frozenset(self._ecosystems)
