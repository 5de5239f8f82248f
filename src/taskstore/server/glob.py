"""Redis's glob-style pattern matching (``stringmatchlen``), for PSUBSCRIBE, PUBSUB CHANNELS,
CONFIG GET and COMMAND LIST: ``*``, ``?``, ``[abc]``, ``[^abc]``, ``[a-z]`` and ``\\`` escapes.

Python's fnmatch differs (``[!a]`` negates, backslash does not escape), so patterns are
translated to regular expressions here, once each.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1024)
def compile_glob(pattern: bytes) -> re.Pattern[bytes]:
    out = bytearray()
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i : i + 1]
        if c == b"*":
            out += b".*"
        elif c == b"?":
            out += b"."
        elif c == b"\\" and i + 1 < n:
            i += 1
            out += re.escape(pattern[i : i + 1])
        elif c == b"[":
            j = i + 1
            negate = j < n and pattern[j : j + 1] == b"^"
            if negate:
                j += 1
            items = bytearray()
            while j < n and pattern[j : j + 1] != b"]":
                ch = pattern[j : j + 1]
                if ch == b"\\" and j + 1 < n:
                    j += 1
                    items += re.escape(pattern[j : j + 1])
                elif (
                    j + 2 < n and pattern[j + 1 : j + 2] == b"-" and pattern[j + 2 : j + 3] != b"]"
                ):
                    lo, hi = pattern[j : j + 1], pattern[j + 2 : j + 3]
                    if lo > hi:  # Redis accepts reversed ranges
                        lo, hi = hi, lo
                    items += re.escape(lo) + b"-" + re.escape(hi)
                    j += 2
                else:
                    items += re.escape(ch)
                j += 1
            # an unclosed class runs to the end of the pattern, as in Redis
            if items:
                out += b"[" + (b"^" if negate else b"") + bytes(items) + b"]"
            else:  # "[]" matches nothing, "[^]" any one byte
                out += b"[\\x00-\\xff]" if negate else b"(?!)"
            i = j
        else:
            out += re.escape(c)
        i += 1
    return re.compile(bytes(out) + rb"\Z", re.DOTALL)


def glob_match(pattern: bytes, text: bytes, *, nocase: bool = False) -> bool:
    if nocase:
        pattern, text = pattern.lower(), text.lower()
    return compile_glob(pattern).match(text) is not None
