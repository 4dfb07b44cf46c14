"""Alpine, Wolfi, Chainguard: apk-tools' version ordering.

Grammar (apk-tools src/version.c): ``digit{.digit}...{letter}{_suffix{digit}}...{~hash}{-r#}``
with suffixes ``alpha beta pre rc`` (before the release) and ``cvs svn git hg p`` (after it).

apk compares two versions token by token while both have a token of the *same type*:

- the first number, suffix numbers and the revision compare as numbers;
- a later dotted number compares as a number, unless either side starts with ``0``, in which
  case both compare as strings (Gentoo's rule: ``1.01 < 1.1`` and ``1.001 < 1.01``);
- a letter compares as a character, a suffix by its rank, a commit hash as a string.

At the first position where the types differ, a pre-release suffix (``_alpha`` … ``_rc``) loses
to anything, and otherwise the side whose token type comes *later* in the grammar loses: ``1.0 <
1.0.1`` (end vs digit), ``1.0a < 1.0.1`` (letter vs digit), ``1.0 < 1.0-r1``.

The key encodes each token as ``(class, value)`` where the class is minus the token type (later
types lower), pre-release suffixes get a class below all others, and the end of the string is
its own token. Tuples then compare exactly as apk does. Validation is apk's
``apk_version_validate``: a string apk would refuse is a ``VersionError``.
"""

from __future__ import annotations

import re

from keelwatch.versions.base import invalid, require_str

# Token types, in grammar order (apk's enum PARTS).
_INITIAL_DIGIT, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _COMMIT_HASH, _REVISION_NO, _END = range(8)

# apk's suffix ranks: pre-releases below the release ("none"), post-releases above it.
_SUFFIX_RANK = {"alpha": 1, "beta": 2, "pre": 3, "rc": 4, "cvs": 6, "svn": 7, "git": 8, "hg": 9, "p": 10}
_SUFFIX_NONE = 5
_PRE_RELEASE_CLASS = -100  # below every other class: a pre-release suffix loses to anything

_DIGITS = re.compile(r"[0-9]*")
_SUFFIX_CHARS = re.compile(r"[a-z]*")
_HEX = re.compile(r"[0-9a-fA-F]*")


def _digit_value(text: str) -> tuple[int, object]:
    # A later dotted number with a leading zero compares as a string against anything; all
    # strings starting with "0" sort below all numbers without one, so (0, str) < (1, int).
    return (0, text) if text[0] == "0" else (1, int(text))


class ApkScheme:
    name = "apk"

    def key(self, version: str) -> tuple[tuple[int, object], ...]:
        text = require_str(self.name, version)
        size = len(text)
        match = _DIGITS.match(text)
        assert match is not None
        pos = match.end()
        if pos == 0:
            raise invalid(self.name, version, "must start with a number")
        tokens: list[tuple[int, object]] = [(-_INITIAL_DIGIT, int(text[:pos]))]
        token = _INITIAL_DIGIT
        while pos < size:
            char = text[pos]
            if "a" <= char <= "z":
                if token > _DIGIT:
                    raise invalid(self.name, version, f"letter {char!r} after the numbers and letter")
                token = _LETTER
                tokens.append((-_LETTER, char))
                pos += 1
            elif char == "." or "0" <= char <= "9":
                if char == ".":
                    if token > _DIGIT:
                        raise invalid(self.name, version, "'.' after a letter or suffix")
                    pos += 1
                if token in (_INITIAL_DIGIT, _DIGIT):
                    token = _DIGIT
                elif token == _SUFFIX:
                    token = _SUFFIX_NO
                else:
                    raise invalid(self.name, version, f"number at offset {pos} not allowed here")
                match = _DIGITS.match(text, pos)
                assert match is not None
                if match.end() == pos:
                    raise invalid(self.name, version, f"expected a number at offset {pos}")
                digits = match.group()
                pos = match.end()
                if token == _DIGIT:
                    tokens.append((-_DIGIT, _digit_value(digits)))
                else:
                    tokens.append((-_SUFFIX_NO, int(digits)))
            elif char == "_":
                if token > _SUFFIX_NO:
                    raise invalid(self.name, version, "suffix after a commit hash or revision")
                match = _SUFFIX_CHARS.match(text, pos + 1)
                assert match is not None
                rank = _SUFFIX_RANK.get(match.group())
                if rank is None:
                    raise invalid(self.name, version, f"unknown suffix {match.group()!r}")
                pos = match.end()
                token = _SUFFIX
                tokens.append((_PRE_RELEASE_CLASS if rank < _SUFFIX_NONE else -_SUFFIX, rank))
            elif char == "~":
                if token >= _COMMIT_HASH:
                    raise invalid(self.name, version, "commit hash after a commit hash or revision")
                match = _HEX.match(text, pos + 1)
                assert match is not None
                if not match.group():
                    raise invalid(self.name, version, "empty commit hash after '~'")
                pos = match.end()
                token = _COMMIT_HASH
                tokens.append((-_COMMIT_HASH, match.group()))
            elif char == "-":
                if token >= _REVISION_NO or not text.startswith("-r", pos):
                    raise invalid(self.name, version, "'-' must start the one -r<number> revision")
                match = _DIGITS.match(text, pos + 2)
                assert match is not None
                if not match.group():
                    raise invalid(self.name, version, "revision -r without a number")
                pos = match.end()
                token = _REVISION_NO
                tokens.append((-_REVISION_NO, int(match.group())))
            else:
                raise invalid(self.name, version, f"unexpected character {char!r}")
        tokens.append((-_END, 0))
        return tuple(tokens)
