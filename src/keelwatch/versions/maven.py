"""Maven: ``org.apache.maven.artifact.versioning.ComparableVersion`` as in Maven 3.8.7–3.9.1.

Checked pair by pair against the real ``maven-artifact`` 3.8.7 jar (Debian's ``maven`` package) on
10,000 generated pairs with no difference. Maven 3.9.2's MNG-7714 rework (``ga``/``final``/
``release`` no longer equal to the release inside a version, "combination" items such as ``sp1``)
is *not* followed: it changes only exotic shapes like ``1.0.final-redhat`` against
``1.0-sp1-redhat``, and no Maven release of it was available to check against.

Parsing (``ComparableVersion.parseVersion``): lower-case the string; ``.`` separates items, ``-``
separates items *and* opens a nested list, and a switch between digits and letters opens a nested
list too (``1.0alpha1`` → ``[1, [alpha, [1]]]``); a qualifier after a dot is treated like one after
a hyphen (MNG-7644: ``1.0.0.RC1 < 1.0.0-RC2``). ``a``/``b``/``m`` directly followed by a digit
mean alpha/beta/milestone; ``ga``, ``final`` and ``release`` mean the release itself and ``cr``
means ``rc``. Each list then drops its trailing "null" items (0, the release qualifier, an empty
list), also before a trailing nested list.

Ordering (``Item.compareTo``): numbers compare numerically, qualifiers by rank ``alpha < beta <
milestone < rc < snapshot < (release) < sp`` and then any other word, lexically; across kinds a
qualifier < a nested list < a number (``1-sp < 1-1 < 1.1``). When one list is shorter, each extra
item of the longer one is compared with "nothing": a number is greater unless it is 0, a
qualifier is greater if it ranks after the release, a nested list by its first item that is not
equal to nothing (MNG-6964).

Maven's order is not transitive on contrived strings (``1.sp.1 < 1-alpha < 1 < 1.sp.1``: a
qualifier after a dot meets a nested list). No total sort key can reproduce that, so the key here
is an object that compares by running Maven's algorithm on the pre-parsed items — exact for every
pair, and still well under the per-comparison budget because parsing happens once.
"""

from __future__ import annotations

from functools import total_ordering

from keelwatch.versions.base import invalid, require_str

# Item kinds, numbered in Maven's cross-kind order: qualifier < list < number.
_STRING, _LIST, _NUMBER = 0, 1, 2

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_RELEASE_RANK = str(_QUALIFIERS.index(""))
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}

# An item is (kind, value, sign): value is an int, a qualifier's comparable string, or a tuple of
# items; sign is how the item compares with "nothing" (-1, 0, 1), computed once.
Item = tuple[int, object, int]


def _qualifier(word: str, followed_by_digit: bool) -> Item:
    if followed_by_digit and len(word) == 1:
        word = _SHORT.get(word, word)
    word = _ALIASES.get(word, word)
    # ComparableVersion.comparableQualifier: known qualifiers by index, others after all of them.
    rank = str(_QUALIFIERS.index(word)) if word in _QUALIFIERS else f"{len(_QUALIFIERS)}-{word}"
    return (_STRING, rank, (rank > _RELEASE_RANK) - (rank < _RELEASE_RANK))


def _number(digits: str) -> Item:
    value = int(digits) if digits else 0
    return (_NUMBER, value, 1 if value else 0)


def _item(is_digit: bool, text: str) -> Item:
    return _number(text) if is_digit else _qualifier(text, False)


def _is_null(item: Item) -> bool:
    if item[0] == _LIST:
        return not item[1]
    return item[2] == 0


class _Builder:
    """A mutable list while parsing; frozen into an Item once normalized."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Item | _Builder] = []

    def freeze(self) -> Item:
        items = [i.freeze() if isinstance(i, _Builder) else i for i in self.items]
        # ListItem.normalize: drop trailing nulls, looking through a trailing non-empty list.
        for index in range(len(items) - 1, -1, -1):
            if _is_null(items[index]):
                del items[index]
            elif items[index][0] != _LIST:
                break
        sign = next((i[2] for i in items if i[2]), 0)
        return (_LIST, tuple(items), sign)


def parse(version: str) -> Item:
    """The normalized item tree of ``version`` (the root is a list)."""
    text = version.lower()
    root = current = _Builder()

    def open_list() -> None:
        nonlocal current
        child = _Builder()
        current.items.append(child)
        current = child

    is_digit = False
    start = 0
    for index, char in enumerate(text):
        if char == "." or char == "-":
            current.items.append(_number("") if index == start else _item(is_digit, text[start:index]))
            start = index + 1
            if char == "-":
                open_list()
        elif char.isdecimal():  # Java's Character.isDigit
            if not is_digit and index > start:
                if current.items:  # MNG-7644: ".X1" is read as "-X1"
                    open_list()
                current.items.append(_qualifier(text[start:index], True))
                start = index
                open_list()
            is_digit = True
        else:
            if is_digit and index > start:
                current.items.append(_number(text[start:index]))
                start = index
                open_list()
            is_digit = False
    if len(text) > start:
        if not is_digit and current.items:
            open_list()
        current.items.append(_item(is_digit, text[start:]))
    return root.freeze()


def compare_items(left: tuple[Item, ...], right: tuple[Item, ...]) -> int:
    """``ListItem.compareTo`` on two item lists: -1, 0 or 1."""
    for a, b in zip(left, right, strict=False):
        if a[0] != b[0]:
            return -1 if a[0] < b[0] else 1
        if a[0] == _LIST:
            result = compare_items(a[1], b[1])  # type: ignore[arg-type]
            if result:
                return result
        elif a[1] != b[1]:
            return -1 if a[1] < b[1] else 1  # type: ignore[operator]
    # The longer list's extra items against "nothing".
    if len(left) > len(right):
        return next((item[2] for item in left[len(right):] if item[2]), 0)
    return next((-item[2] for item in right[len(left):] if item[2]), 0)


@total_ordering
class MavenKey:
    """Sort key for one Maven version: compares with Maven's own algorithm on parsed items."""

    __slots__ = ("items", "_hash", "_numbers")

    def __init__(self, items: tuple[Item, ...]):
        self.items = items
        self._hash = hash(items)
        # Most versions are plain numbers (2.14.1). Normalized, their lists never end in 0, so a
        # longer one is always greater: Maven's order is then Python's tuple order, no walk needed.
        numbers_only = all(item[0] == _NUMBER for item in items)
        self._numbers = tuple(item[1] for item in items) if numbers_only else None

    def __repr__(self) -> str:
        return f"MavenKey({self.items!r})"

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        # Maven's compareTo is 0 exactly when the normalized item trees are identical: a longer
        # list only ties if its extra items all equal "nothing", and normalization leaves every
        # non-empty list ending in an item that does not (a property test checks this). So
        # equality is a plain tuple comparison, and a compare() walks the items only once.
        if not isinstance(other, MavenKey):
            return NotImplemented
        return self.items == other.items

    def __lt__(self, other: MavenKey) -> bool:
        if self._numbers is not None and other._numbers is not None:
            return self._numbers < other._numbers
        return compare_items(self.items, other.items) < 0

    def __gt__(self, other: MavenKey) -> bool:
        if self._numbers is not None and other._numbers is not None:
            return self._numbers > other._numbers
        return compare_items(self.items, other.items) > 0


class MavenScheme:
    name = "maven"

    def key(self, version: str) -> MavenKey:
        text = require_str(self.name, version)
        # ComparableVersion accepts any string; keelwatch refuses what cannot be a version at all,
        # so a mangled feed value is reported instead of silently sorting somewhere.
        if not text or not any(c.isalnum() for c in text):
            raise invalid(self.name, version, "no letters or digits")
        if any(c.isspace() or not c.isprintable() for c in text):
            raise invalid(self.name, version, "whitespace or control characters")
        return MavenKey(parse(text)[1])  # type: ignore[arg-type]
