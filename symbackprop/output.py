"""Safe writing of generated files: atomic, and never over a file the tool did not write.

Each output folder keeps ``.symbackprop-manifest.json`` with the SHA-256 of
every file symbackprop wrote there.  A file that exists but is not in the
manifest, or whose content changed since, belongs to the user: it is only
replaced with ``force=True``.  Every check happens before anything is written,
and :func:`check_folder` runs the same checks before any work starts.  Files that
symbackprop wrote on an earlier run and that this run no longer produces (a PDF
after ``--no-pdf``) are removed, unless they were edited since.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from .errors import OutputError

MANIFEST = ".symbackprop-manifest.json"
_UMASK = os.umask(0)
os.umask(_UMASK)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_manifest(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.get("files", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def check_folder(folder: str | Path, names, force: bool = False) -> None:
    """Refuse, before any work, a folder that is a file or a file in it that belongs to the user."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output folder {folder} is a file; choose a folder with -o")
    if force or not folder.is_dir():
        return
    manifest = _read_manifest(folder)
    for name in names:
        target = folder / name
        if not target.exists():
            continue
        recorded = manifest.get(name)
        if recorded is None or recorded != _digest(target.read_bytes()):
            raise OutputError(f"{target} exists and was not written by symbackprop (or was edited); "
                              "move it away, choose another folder with -o, or pass --force")


def write_outputs(folder: str | Path, files: dict[str, bytes], force: bool = False) -> list[Path]:
    """Write ``files`` (name -> bytes) into ``folder``; returns the paths written.

    Earlier outputs that this run does not produce are removed when unchanged
    (see :func:`stale_outputs`); edited ones stay and leave the manifest.
    """
    folder = Path(folder)
    check_folder(folder, files, force)
    manifest = _read_manifest(folder) if folder.is_dir() else {}
    written = []
    for name, data in files.items():
        write_atomic(folder / name, data)
        manifest[name] = _digest(data)
        written.append(folder / name)
    for name in sorted(set(manifest) - set(files)):
        target = folder / name
        if target.is_file() and _digest(target.read_bytes()) == manifest[name]:
            target.unlink()
        del manifest[name]
    body = json.dumps({"generator": "symbackprop", "files": dict(sorted(manifest.items()))}, indent=2)
    write_atomic(folder / MANIFEST, (body + "\n").encode())
    return written


def stale_outputs(folder: str | Path, names) -> list[str]:
    """Files symbackprop wrote in ``folder`` earlier, unchanged, that a run writing ``names`` removes."""
    folder = Path(folder)
    manifest = _read_manifest(folder) if folder.is_dir() else {}
    return [name for name in sorted(set(manifest) - set(names))
            if (folder / name).is_file() and _digest((folder / name).read_bytes()) == manifest[name]]
