"""``--sfm FIELD=VALUE`` options of the frontend benchmarks: one SfmConfig field changed per option."""

from __future__ import annotations


def sfm_overrides(sfm, items: list[str]) -> dict:
    """``["matcher=sequential", "remask=0"]`` -> typed changes of the SfmConfig ``sfm``."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(sfm)}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"--sfm expects FIELD=VALUE with FIELD one of {sorted(fields)}, got {item!r}")
        current = getattr(sfm, key)
        if isinstance(current, bool):
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = type(current)(value)
    return out
