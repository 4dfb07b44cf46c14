"""Obviously-correct comparators: line-by-line ports of each tool's own comparison code.

keelwatch's schemes turn versions into sort keys so that a comparison is one tuple comparison.
These ports instead walk the two strings the way the original C/Ruby/PHP code does, with no
cleverness, so a property test can check that the clever keys agree with them on every input.
Each takes two *valid* version strings and returns -1, 0 or 1.
"""

from __future__ import annotations

import re


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


# --- dpkg: lib/dpkg/version.c ------------------------------------------------------------------

def _dpkg_order(c: str) -> int:
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    if c:
        return ord(c) + 256
    return 0


def verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _dpkg_order(a[i] if i < len(a) else "")
            bc = _dpkg_order(b[j] if j < len(b) else "")
            if ac != bc:
                return _sign(ac - bc)
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return _sign(first_diff)
    return 0


def _dpkg_parse(version: str) -> tuple[int, str, str]:
    version = version.strip()
    epoch, _, rest = version.partition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch), upstream, revision


def dpkg(a: str, b: str) -> int:
    (ea, ua, ra), (eb, ub, rb) = _dpkg_parse(a), _dpkg_parse(b)
    if ea != eb:
        return _sign(ea - eb)
    return verrevcmp(ua, ub) or verrevcmp(ra, rb)


# --- rpm: rpmio/rpmvercmp.c and rpmverCmp ---------------------------------------------------------

def rpmvercmp(a: str, b: str) -> int:
    if a == b:
        return 0
    one, two = a, b
    i = j = 0

    def special(c: str) -> bool:
        return c.isascii() and c.isalnum() or c in "~^"

    while i < len(one) or j < len(two):
        while i < len(one) and not special(one[i]):
            i += 1
        while j < len(two) and not special(two[j]):
            j += 1
        c1 = one[i] if i < len(one) else ""
        c2 = two[j] if j < len(two) else ""
        if c1 == "~" or c2 == "~":
            if c1 != "~":
                return 1
            if c2 != "~":
                return -1
            i += 1
            j += 1
            continue
        if c1 == "^" or c2 == "^":
            if not c1:
                return -1
            if not c2:
                return 1
            if c1 != "^":
                return 1
            if c2 != "^":
                return -1
            i += 1
            j += 1
            continue
        if not (c1 and c2):
            break
        pattern = r"[0-9]*" if c1.isdigit() else r"[A-Za-z]*"
        seg1 = re.compile(pattern).match(one, i).group()  # type: ignore[union-attr]
        seg2 = re.compile(pattern).match(two, j).group()  # type: ignore[union-attr]
        i += len(seg1)
        j += len(seg2)
        if not seg2:
            return 1 if c1.isdigit() else -1
        if c1.isdigit():
            seg1, seg2 = seg1.lstrip("0"), seg2.lstrip("0")
            if len(seg1) != len(seg2):
                return 1 if len(seg1) > len(seg2) else -1
        if seg1 != seg2:
            return 1 if seg1 > seg2 else -1
    if i >= len(one) and j >= len(two):
        return 0
    return 1 if i < len(one) else -1


def rpm(a: str, b: str) -> int:
    def parse(v: str) -> tuple[str, str, str | None]:
        m = re.match(r"([0-9]*):", v)
        epoch, rest = (m.group(1) or "0", v[m.end():]) if m else ("0", v)
        if "-" in rest:
            version, _, release = rest.rpartition("-")
            return epoch, version, release
        return epoch, rest, None

    (ea, va, ra), (eb, vb, rb) = parse(a), parse(b)
    result = rpmvercmp(ea, eb) or rpmvercmp(va, vb)
    if result:
        return result
    if ra is not None and rb is not None:
        return rpmvercmp(ra, rb)
    return 0 if ra == rb else (1 if ra is not None else -1)  # rpm 4.18: a release beats none


# --- apk: src/version.c (apk-tools 2.14 / 3) ------------------------------------------------------

_APK_SUFFIXES = ["", "alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p"]
INITIAL, DIGIT, LETTER, SUFFIX, SUFFIX_NO, HASH, REVISION, END, INVALID = range(9)


def _apk_tokens(v: str) -> list[tuple[int, str, int]]:
    """(token, text, suffix rank) in order, ending with END (input assumed valid)."""
    out = []
    m = re.match(r"[0-9]+", v)
    assert m
    out.append((INITIAL, m.group(), 0))
    pos, token = m.end(), INITIAL
    while pos < len(v):
        c = v[pos]
        if c.islower():
            token, text, pos = LETTER, c, pos + 1
        elif c == "." or c.isdigit():
            pos += c == "."
            token = DIGIT if token in (INITIAL, DIGIT) else SUFFIX_NO
            text = re.match(r"[0-9]+", v[pos:]).group()  # type: ignore[union-attr]
            pos += len(text)
        elif c == "_":
            text = re.match(r"[a-z]*", v[pos + 1:]).group()  # type: ignore[union-attr]
            token, pos = SUFFIX, pos + 1 + len(text)
        elif c == "~":
            text = re.match(r"[0-9a-fA-F]*", v[pos + 1:]).group()  # type: ignore[union-attr]
            token, pos = HASH, pos + 1 + len(text)
        else:  # "-r"
            text = re.match(r"[0-9]*", v[pos + 2:]).group()  # type: ignore[union-attr]
            token, pos = REVISION, pos + 2 + len(text)
        out.append((token, text, _APK_SUFFIXES.index(text) if token == SUFFIX and text != "p" else 10))
    out.append((END, "", 0))
    return out


def apk(a: str, b: str) -> int:
    ta, tb = _apk_tokens(a), _apk_tokens(b)
    k = 0
    while ta[k][0] == tb[k][0] and ta[k][0] < END:
        (t, x, sx), (_, y, sy) = ta[k], tb[k]
        if t == DIGIT and (x[0] == "0" or y[0] == "0") or t in (HASH, LETTER):
            r = (x > y) - (x < y)  # compared as strings
        elif t == SUFFIX:
            r = (sx > sy) - (sx < sy)
        else:
            r = (int(x) > int(y)) - (int(x) < int(y))
        if r:
            return r
        k += 1
    at, bt = ta[k][0], tb[k][0]
    if at == bt:
        return 0
    if at == SUFFIX and ta[k][2] < 5:
        return -1
    if bt == SUFFIX and tb[k][2] < 5:
        return 1
    return -1 if at > bt else 1


# --- RubyGems: Gem::Version#<=> -------------------------------------------------------------------

def _gem_canonical(v: str) -> list[int | str]:
    segments: list[int | str] = [int(s) if s.isdigit() else s
                                 for s in re.findall(r"[0-9]+|[a-z]+", v.strip().replace("-", ".pre."), re.I)]
    string_start = next((i for i, s in enumerate(segments) if isinstance(s, str)), None)
    numeric = segments[:string_start] if string_start is not None else segments
    strings = segments[string_start:] if string_start is not None else []
    while numeric and numeric[-1] == 0:
        numeric = numeric[:-1]
    while strings and strings[-1] == 0:
        strings = strings[:-1]
    return numeric + strings


def gem(a: str, b: str) -> int:
    left, right = _gem_canonical(a), _gem_canonical(b)
    for i in range(max(len(left), len(right))):
        lhs = left[i] if i < len(left) else 0
        rhs = right[i] if i < len(right) else 0
        if lhs == rhs:
            continue
        if isinstance(lhs, str) and isinstance(rhs, int):
            return -1
        if isinstance(lhs, int) and isinstance(rhs, str):
            return 1
        return -1 if lhs < rhs else 1  # type: ignore[operator]
    return 0


# --- PHP: ext/standard/versioning.c (applied to Composer-normalized strings) ------------------------

def _php_canonicalize(v: str) -> str:
    if not v:
        return v
    out = [v[0]]
    previous = v[0]
    for c in v[1:]:
        def isdig(x: str) -> bool:
            return x.isdigit() and x != "."

        def isndig(x: str) -> bool:
            return not x.isdigit() and x != "."

        if c in "-_+":
            if out[-1] != ".":
                out.append(".")
        elif (isndig(previous) and isdig(c)) or (isdig(previous) and isndig(c)):
            if out[-1] != ".":
                out.append(".")
            out.append(c)
        elif not c.isalnum():
            if out[-1] != ".":
                out.append(".")
        else:
            out.append(c)
        previous = c
    return "".join(out)


_FORMS = [("dev", 0), ("alpha", 1), ("a", 1), ("beta", 2), ("b", 2), ("RC", 3), ("rc", 3), ("#", 4), ("pl", 5),
          ("p", 5)]


def _special(form1: str, form2: str) -> int:
    def find(form: str) -> int:
        return next((order for name, order in _FORMS if form.startswith(name)), -1)

    return _sign(find(form1) - find(form2))


def php_version_compare(v1: str, v2: str) -> int:
    if not v1 or not v2:
        return 0 if not v1 and not v2 else (1 if v1 else -1)
    p1 = (v1 if v1[0] == "#" else _php_canonicalize(v1)).split(".")
    p2 = (v2 if v2[0] == "#" else _php_canonicalize(v2)).split(".")
    compare = 0
    k = 0
    while k < len(p1) and k < len(p2):
        a, b = p1[k], p2[k]
        if a[:1].isdigit() and b[:1].isdigit():
            compare = _sign(int(a) - int(b))
        elif not a[:1].isdigit() and not b[:1].isdigit():
            compare = _special(a, b)
        else:
            compare = _special("#N#", b) if a[:1].isdigit() else _special(a, "#N#")
        if compare:
            return compare
        k += 1
    if k < len(p1):
        return 1 if p1[k][:1].isdigit() else php_version_compare(".".join(p1[k:]), "#N#")
    if k < len(p2):
        return -1 if p2[k][:1].isdigit() else php_version_compare("#N#", ".".join(p2[k:]))
    return 0


# --- SemVer 2.0.0 §11 -----------------------------------------------------------------------------

def semver(a: str, b: str) -> int:
    def parse(v: str) -> tuple[list[int], list[str] | None]:
        v = v.split("+", 1)[0].removeprefix("v")
        core, _, pre = v.partition("-")
        return [int(x) for x in core.split(".")], pre.split(".") if pre else None

    (ca, pa), (cb, pb) = parse(a), parse(b)
    if ca != cb:
        return -1 if ca < cb else 1
    if pa is None or pb is None:
        return 0 if pa == pb else (1 if pa is None else -1)
    for x, y in zip(pa, pb, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return _sign(int(x) - int(y))
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    return _sign(len(pa) - len(pb))
