"""Byte units: parsing `24GiB` / `80GB` / `16384MiB` and printing GiB.

GiB = 2**30 bytes, GB = 10**9 bytes (SCENARIO.md "Units"). Internally every size is an int of bytes.
"""

from __future__ import annotations

import re

KIB = 2**10
MIB = 2**20
GIB = 2**30
GB = 10**9
MB = 10**6

_UNITS = {"b": 1, "kib": KIB, "mib": MIB, "gib": GIB, "tib": 2**40, "kb": 10**3, "mb": MB, "gb": GB, "tb": 10**12}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]i?b|b)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int | None:
    """`'24GiB'` -> 25769803776, `'80GB'` -> 80000000000; None when `text` is not a size."""
    m = _SIZE_RE.match(text)
    if not m:
        return None
    return int(round(float(m.group(1)) * _UNITS[m.group(2).lower()]))


def ceil_div(a: int, b: int) -> int:
    """Integer ceiling of a / b for non-negative a and positive b."""
    return -(-a // b)


def fmt_gib(n_bytes: int | float, digits: int = 2) -> str:
    """`12.55` style GiB string (callers print the `GiB` unit in a header or suffix)."""
    return f"{n_bytes / GIB:.{digits}f}"
