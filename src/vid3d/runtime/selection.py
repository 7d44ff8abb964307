"""Frame selections given on the command line: ``START:END:STEP`` over a clip of ``num_frames``."""

from __future__ import annotations

from vid3d.formats.errors import InputError


def parse_frame_range(text: str | None, num_frames: int, *, option: str = "--frames") -> list[int]:
    """``START:END:STEP`` (Python slice rules, parts optional, END exclusive; a single ``N`` = that
    frame, negative counts from the end) -> frame indices; all frames when ``text`` is None or empty.

    Raises InputError (naming ``option``) on malformed text, a non-positive STEP, a frame out of
    range, or a selection with no frame.
    """
    if text is None or text.strip() in ("", ":", "::"):
        return list(range(num_frames))
    parts = text.strip().split(":")
    try:
        if len(parts) > 3:
            raise ValueError
        vals = [int(p) if p.strip() else None for p in parts] + [None] * (3 - len(parts))
    except ValueError:
        raise InputError(f"{option}: expected START:END:STEP (integers, parts optional), got {text!r}") from None
    if len(parts) == 1:  # one frame
        t = vals[0]
        if not -num_frames <= t < num_frames:
            raise InputError(f"{option}: frame {t} out of range (the capture has {num_frames} frames)")
        return [t % num_frames]
    if vals[2] is not None and vals[2] <= 0:
        raise InputError(f"{option}: expected a positive STEP, got {vals[2]}")
    idx = list(range(num_frames))[slice(*vals)]
    if not idx:
        raise InputError(f"{option}: {text!r} selects no frame of the {num_frames} in the capture")
    return idx
