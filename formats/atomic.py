"""Atomic output: write under a temporary name beside the target, then rename into place.

Nothing half-written ever appears under a final name: on any exception (Ctrl-C included) the
temporary file or folder is removed and an existing file at the target is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def temp_sibling(final: Path, suffix: str = ".partial") -> Path:
    """A unique temporary path in the same folder as ``final`` (same filesystem: rename is atomic)."""
    final = Path(final)
    return final.with_name(f".{final.name}.{os.getpid()}{suffix}")


@contextlib.contextmanager
def atomic_file(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``final`` atomically."""
    final = Path(final)
    if final.is_dir():
        from vid3d.formats.errors import InputError

        raise InputError(f"output {final} is a folder; expected a file path")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it replaces ``final`` (old content removed last)."""
    final = Path(final)
    if final.exists() and not final.is_dir():
        from vid3d.formats.errors import InputError

        raise InputError(f"output {final} exists and is not a folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        old = temp_sibling(final, ".old")
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
