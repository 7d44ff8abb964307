"""The plain-text table the benchmarks print before their JSON line."""

from __future__ import annotations


def print_table(rows: list[dict], cols: list[str]) -> None:
    """One ``" | "``-separated header line of ``cols``, then one line per row: floats to 3 significant
    digits, anything else as ``str``, a missing key as ``-``."""
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.3g}" if isinstance(r.get(c), float) else str(r.get(c, "-")) for c in cols))
