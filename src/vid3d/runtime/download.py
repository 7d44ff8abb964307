"""Downloading learned models into the user cache: vid3d's own network code (the other network access is
torch.hub loading MiDaS, and only with ``--download-models``).

It runs only when asked (``vid3d models fetch NAME``, or ``vid3d optimize --download-models`` on first
use of a model). Files come over plain HTTPS (``urllib``) from the addresses in
:data:`vid3d.runtime.weights.SOURCES`, or from a mirror that serves the same paths: ``$VID3D_MODELS_URL``
(or ``base_url=``) replaces the scheme and host, so ``https://huggingface.co/depth-anything/.../config.json``
is read from ``$VID3D_MODELS_URL/depth-anything/.../config.json``.

Every model is written atomically (:mod:`vid3d.formats.atomic`): its files go to a temporary name in
the destination folder and are renamed into place only when every file arrived whole (size and, when
known, SHA-256 checked). A failed or interrupted download leaves nothing under the final name.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from vid3d.formats.atomic import atomic_dir, atomic_file
from vid3d.formats.errors import InputError
from vid3d.runtime.weights import MODELS, SOURCES, RemoteFile, install_path

MIRROR_ENV = "VID3D_MODELS_URL"
CHUNK = 1 << 20
TIMEOUT_S = 30.0
MANIFEST = "vid3d-fetch.json"  # beside a folder model's files: where they came from, their SHA-256


class DownloadError(InputError):
    """A model could not be downloaded (offline, host unreachable, truncated or altered file)."""


def mirror_url(url: str, base_url: str | None = None) -> str:
    """``url`` read from the mirror ``base_url`` (default ``$VID3D_MODELS_URL``; none: ``url`` itself)."""
    base = base_url if base_url is not None else os.environ.get(MIRROR_ENV)
    if not base:
        return url
    path = urllib.parse.urlsplit(url).path
    return base.rstrip("/") + path


def _failed(url: str, reason: object) -> DownloadError:
    return DownloadError(f"could not download {url}: {reason}; download it elsewhere and run "
                         f"vid3d models import PATH")


def download_file(url: str, dest: Path, *, sha256: str | None = None, size: int | None = None,
                  progress: bool = True, label: str | None = None, timeout: float = TIMEOUT_S) -> str:
    """Download ``url`` to ``dest`` (a path the caller renames later) with a progress bar named ``label``
    on stderr (none when not ``progress``); returns the file's SHA-256 in hex.

    Raises DownloadError (one line) when the host cannot be reached, answers an error, the body ends
    early, or the size / SHA-256 differ from ``size`` / ``sha256``. ``dest`` may then hold a partial file:
    callers write to a temporary name (:func:`fetch_model` does).
    """
    from tqdm import tqdm

    digest = hashlib.sha256()
    received = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "vid3d"})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else size
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label or Path(dest).name,
                      disable=not progress, leave=False) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise _failed(url, f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _failed(url, exc.reason) from None
    except (http.client.HTTPException, OSError) as exc:  # connection reset, timeout, body cut short
        raise _failed(url, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    if total is not None and received != total:
        raise _failed(url, f"got {received} of {total} bytes")
    if size is not None and received != size:
        raise _failed(url, f"got {received} bytes, expected {size}")
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        raise _failed(url, f"SHA-256 {digest.hexdigest()} differs from the expected {sha256}")
    return digest.hexdigest()


def _get(remote: RemoteFile, dest: Path, base_url: str | None, progress: bool) -> dict:
    url = mirror_url(remote.url, base_url)
    sha = download_file(url, dest, sha256=remote.sha256, size=remote.size, progress=progress, label=remote.name)
    return {"file": remote.name, "url": url, "sha256": sha, "bytes": dest.stat().st_size}


def fetch_model(name: str, *, base_url: str | None = None, force: bool = False, progress: bool = True) -> Path:
    """Download model ``name`` into the user cache (:func:`~vid3d.runtime.weights.install_path`); returns
    where it lies. Already there and not ``force``: returns it without touching the network.

    Raises InputError for an unknown model or one vid3d does not download (with the reason), and
    DownloadError (one line, nothing left under the final name) when a download fails.
    """
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    source = SOURCES[name]
    if not source.files:
        raise InputError(f"vid3d does not download {name}: {source.not_fetchable}")
    final = install_path(name)
    if final.exists() and not force:
        return final
    if MODELS[name].is_dir:
        with atomic_dir(final) as tmp:
            got = [_get(remote, tmp / remote.name, base_url, progress) for remote in source.files]
            (tmp / MANIFEST).write_text(json.dumps({"model": name, "licence": source.licence, "files": got},
                                                   indent=2))
    else:
        (remote,) = source.files
        with atomic_file(final) as tmp:
            _get(remote, tmp, base_url, progress)
    return final

