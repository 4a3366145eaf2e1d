"""Plain-text tables for the bench's reports: two spaces between columns, a dashed rule under the header."""

from __future__ import annotations

from collections.abc import Container, Sequence


def format_table(rows: Sequence[Sequence[str]], right: Container[int]) -> list[str]:
    """The lines of ``rows`` (the first one is the header): each column as wide as its widest cell,
    the columns whose index is in ``right`` right-aligned and the others left-aligned, no trailing
    spaces, and under the header a rule of dashes as wide as each column."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out: list[str] = []
    for n, r in enumerate(rows):
        out.append(
            "  ".join(
                c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)
            ).rstrip()
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out
