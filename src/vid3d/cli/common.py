"""Option parsing shared by several commands."""

from __future__ import annotations


def parse_frame_range(text: str | None, num_frames: int) -> list[int]:
    """``"START:END[:STEP]"`` (Python slice semantics, END exclusive) -> frame indices; all if None."""
    from vid3d.formats.errors import InputError

    if text is None:
        return list(range(num_frames))
    try:
        parts = [int(p) if p.strip() else None for p in text.split(":")]
        if not 1 <= len(parts) <= 3:
            raise ValueError
        if len(parts) == 1:
            parts = [parts[0], parts[0] + 1 if parts[0] is not None else None]
        idx = list(range(num_frames))[slice(*parts)]
    except (ValueError, TypeError):
        raise InputError(f"frames must look like START:END[:STEP], got {text!r}") from None
    if not idx:
        raise InputError(f"frames {text!r} selects no frame of {num_frames}")
    return idx
