"""Where ``ampcore run`` and the history commands write: checked before any work, never inside
the storage they read, never over an existing file, and atomically (a temporary file in the
same directory, then a hard link or rename onto the final name). ``-`` means standard output."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ampcore.core.errors import UsageError

STDOUT = "-"


def is_stdout(path: Path | str | None) -> bool:
    return path is not None and str(path) == STDOUT


def refuse_inside(path: Path, option: str, roots: Sequence[Path]) -> None:
    """A usage error when ``path`` is (inside) one of the storage ``roots`` read."""
    resolved = path.resolve()
    for root in roots:
        if resolved == root or root in resolved.parents:
            raise UsageError(f"{option} {path} is inside the storage {root} that this command "
                             "reads; ampcore never writes into the history it reads: choose a "
                             "path outside it")


def check_directory(directory: Path, option: str, path: Path) -> None:
    """``directory`` exists or can be created, and a file can be created in it: probed by
    creating (and removing) a temporary file in its nearest existing ancestor."""
    probe = directory
    while not probe.exists() and probe != probe.parent:
        if probe.is_symlink():  # a dangling link: mkdir would fail on it
            raise UsageError(f"{option} {path}: {probe} is a broken symbolic link")
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{option} {path} cannot be written: {probe} is not a directory")
    try:
        handle, name = tempfile.mkstemp(dir=probe, prefix=".ampcore-probe-")
        os.close(handle)
        os.unlink(name)
    except OSError as exc:
        raise UsageError(f"{option} {path} cannot be written: {probe}: "
                         f"{exc.strerror or exc}") from None


def check_new_file(path: Path | None, option: str, roots: Sequence[Path]) -> None:
    """Before any work: ``path`` may be created as a new file (or is ``-``)."""
    if path is None or is_stdout(path):
        return
    refuse_inside(path, option, roots)
    if os.path.lexists(path):
        raise UsageError(f"{option} {path} exists; ampcore never overwrites a file: choose "
                         "another path")
    check_directory(path.parent, option, path)


def check_append_file(path: Path | None, option: str, roots: Sequence[Path]) -> None:
    """Before any work: text may be appended to ``path`` (or it is ``-``)."""
    if path is None or is_stdout(path):
        return
    refuse_inside(path, option, roots)
    if not path.exists():
        check_directory(path.parent, option, path)
        return
    if path.is_dir():
        raise UsageError(f"{option} {path} is a directory")
    try:
        with path.open("a", encoding="utf-8"):  # opening to append changes nothing
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path} cannot be written: {exc.strerror or exc}") from None


def check_new_directory(path: Path, option: str, roots: Sequence[Path]) -> None:
    """Before any work: ``path`` is a new or empty directory outside the storage (or ``-``)."""
    if is_stdout(path):
        return
    refuse_inside(path, option, roots)
    if os.path.lexists(path) and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"{option} {path} exists and is not an empty directory; ampcore "
                         "never overwrites files")
    check_directory(path.parent, option, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _link_new(temporary: str, path: Path) -> None:
    """Give ``temporary`` the name ``path``, failing if ``path`` exists."""
    try:
        os.link(temporary, path)  # atomic, and never replaces an existing file
        return
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: claim the name, then replace the claim
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        try:
            os.replace(temporary, path)
        except BaseException:  # an empty claim left behind would block the next try
            os.unlink(path)
            raise


def write_new(path: Path, text: str, option: str = "output") -> Path:
    """Write ``text`` to the new file ``path`` (``-``: standard output) atomically: readers
    see no file or the whole file, and an existing file is never replaced."""
    if is_stdout(path):
        sys.stdout.write(text)
        sys.stdout.flush()
        return path
    try:
        return create_new(path, text)
    except FileExistsError:
        raise UsageError(f"{option} {path} appeared while ampcore worked; ampcore never "
                         "overwrites a file: nothing was written") from None


def create_new(path: Path, text: str) -> Path:
    """Write ``text`` to the new file ``path`` atomically (a temporary file in its directory,
    then linked onto the name); ``FileExistsError`` when ``path`` exists, which is never
    replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _staged(path, text)
    try:
        _link_new(temporary, path)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)
    return path


def create_temporary(prefix: str, suffix: str, text: str) -> Path:
    """Write ``text`` atomically to a new file of a unique name in the system's temporary
    directory: the name is reserved first, then the whole text replaces the reservation."""
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    os.close(handle)
    path, temporary = Path(name), None
    try:
        temporary = _staged(path, text)
        os.replace(temporary, path)
    except BaseException:
        for leftover in (temporary, name):
            if leftover is not None:
                Path(leftover).unlink(missing_ok=True)
        raise
    return path


def _staged(path: Path, text: str) -> str:
    """A temporary file beside ``path`` holding ``text``, on disk, with the umask's mode; a
    failed write (a full disk) leaves nothing behind."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


def append_text(path: Path, text: str) -> Path:
    """Append in one write (GitHub creates $GITHUB_STEP_SUMMARY before the step and other
    steps' text stays); ``-``: standard output."""
    if is_stdout(path):
        sys.stdout.write(text)
        sys.stdout.flush()
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
    return path


def write_new_directory(path: Path, files: dict[str, bytes], option: str = "--out") -> Path:
    """Create the directory ``path`` holding ``files`` (name -> content) atomically: built
    under a temporary name beside it, then renamed; an existing non-empty directory is never
    replaced (an empty one is)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        for name, content in files.items():
            with (temporary / name).open("xb") as handle:
                handle.write(content)
        os.chmod(temporary, 0o777 & ~_umask())
        try:
            os.rename(temporary, path)  # fails if path is a file or a non-empty directory
        except OSError as exc:
            raise UsageError(f"{option} {path} cannot be put in place ({exc.strerror or exc}: "
                             "did files appear there meanwhile?); ampcore never overwrites "
                             "files: nothing was written") from None
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)
    return path
