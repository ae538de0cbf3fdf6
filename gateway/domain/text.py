"""
Checks on JSON text that every layer shares (a leaf module).

A lone surrogate can only reach a Python string from JSON through a
C{\\uD800}-style escape (UTF-8 cannot carry one), and such a string can
never be written out as UTF-8 again: the store, the API and every dialect
refuse it.  L{lone_surrogate} finds one in the JSON text itself, before or
after decoding, without walking the decoded value, and at C speed: the
common text (no surrogate escape at all) costs one substring search.
"""

from __future__ import annotations

import re
from typing import Optional

__all__ = ["lone_surrogate"]

#: A high surrogate escape directly followed by a low one: one character.
_PAIR = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
#: Any surrogate escape (once the pairs are blanked out: a lone one).
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def lone_surrogate(text: str) -> Optional[int]:
    """
    The character position in the JSON C{text} of the first escape that
    decodes to a lone surrogate, or C{None} when there is none.
    """
    if "\\u" not in text:
        return None
    # An escaped backslash is not the start of an escape: blank each pair
    # (same length, so positions stay), then the valid surrogate pairs.
    scan = text.replace("\\\\", "\0\0")
    scan = _PAIR.sub("\0" * 12, scan)
    found = _SURROGATE.search(scan)
    return None if found is None else found.start()
