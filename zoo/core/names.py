"""Near misses for mistyped names, so an error can suggest the name that was meant."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` of ``choices`` that look like ``word``, closest first."""
    return difflib.get_close_matches(word, list(choices), n=n, cutoff=0.5)


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str:
    """' (did you mean a, b?)' when some of ``choices`` look like ``word``, else ''."""
    near = close_matches(word, choices, n)
    return f" (did you mean {', '.join(near)}?)" if near else ""
