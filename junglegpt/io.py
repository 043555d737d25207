"""Atomic writes: a reader never sees a half-written file, and a crash leaves the old one in place."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import numbers
import os
import shutil
import tempfile
from pathlib import Path


class DiskFullError(OSError):
    """Raised instead of a bare ENOSPC, with a message that says what to do."""


def _disk_full(err: BaseException, path: Path) -> bool:
    """Whether `err`, raised while writing `path`, means the disk is full.

    Plain writes say so with ENOSPC; safetensors puts "os error 28" in its message; torch.save says
    only "file write failed" (from inline_container.cc), so there we look at the free space.
    """
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    text = str(err)
    if "No space left on device" in text or "os error 28" in text:
        return True
    if "file write failed" in text or "inline_container" in text:
        folder = next((p for p in (path, *path.parents) if p.exists()), Path("."))
        try:
            return shutil.disk_usage(folder).free < 64 * 2**20
        except OSError:
            return False
    return False


@contextlib.contextmanager
def _explain_disk_full(path: Path):
    try:
        yield
    except Exception as err:
        if _disk_full(err, path):
            raise DiskFullError(
                errno.ENOSPC,
                f"The disk is full while writing {path}. Free some space (old checkpoints live in "
                "OUT/models/<size>/training) and run again: finished work is kept and skipped.",
            ) from err
        raise


def _usual_mode(path: Path, full: int) -> None:
    """Give a temporary file or folder (made 0600 / 0700) the permissions a plain open() or mkdir() would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, full & ~umask)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with _explain_disk_full(path), os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _usual_mode(Path(tmp), 0o666)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def finite_or_null(obj):
    """`obj` with every NaN and infinity (Python's or NumPy's) replaced by None.

    Python's json writes them as bare NaN and Infinity, which are not JSON: JavaScript, jq and
    most readers outside Python refuse the whole file. null says "no number" in every one of them
    (a time that was not measured, a loss that diverged), so readers check for None instead.
    NumPy's other numbers become plain ones, which json cannot write either."""
    if isinstance(obj, dict):
        return {key: finite_or_null(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_null(value) for value in obj]
    if isinstance(obj, bool | int | str) or obj is None:
        return obj
    if isinstance(obj, numbers.Integral):  # NumPy's integers
        return int(obj)
    if isinstance(obj, numbers.Real):  # float, NumPy's floats
        return float(obj) if math.isfinite(obj) else None
    return obj


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    """Write `obj` as strict JSON: NaN and infinities become null (`finite_or_null`)."""
    text = json.dumps(finite_or_null(obj), indent=2, ensure_ascii=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")


class DamagedFileError(ValueError):
    """A results or metrics file that cannot be read, with a message that names it and says what to do."""


def read_json(path: str | os.PathLike):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DamagedFileError(
            f"{path} is damaged: it is not valid JSON ({err}). It was probably cut short or edited by hand. "
            "Delete it and run again the notebook that writes it (a model's metrics.json: 03_train for that "
            "size, with force=True; results.json: 04_evaluate)."
        ) from None


def update_json(path: str | os.PathLike, entries: dict) -> Path:
    """Set `entries` in the JSON object at `path` (created if absent), keeping its other keys.

    results.json is shared: notebook 04 writes its tables, 06 and 07 add a section each, and a
    rerun of one must not erase the others'.
    """
    current = read_json(path) if Path(path).exists() else {}
    return atomic_write_json(path, {**current, **entries})


@contextlib.contextmanager
def exclusive(path: str | os.PathLike):
    """Hold an exclusive lock on `path` + ".lock" for the block: processes that share a file
    (sizes training at once, `./run_all.sh --parallel`) read, decide and write it one at a time.
    Where there are no POSIX locks (Windows), the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        yield
        return
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # waits for the holder; released when the file closes
        yield


def remove_entry(path: str | os.PathLike) -> None:
    """Remove `path` from its folder, whatever it is; a symbolic link is removed itself, never what
    it points to (on Kaggle that is an attached run's read-only folder)."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike):
    """Yield a temporary folder; on success it replaces `path` in one rename.

    Used for checkpoints and model folders: if the process dies inside the block, `path` is either
    the complete old folder or absent, never a mix. A `path` that is a symbolic link (an earlier
    run's folder, linked in on Kaggle) is replaced by the new folder: nothing is written, renamed or
    deleted through the link.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    _usual_mode(tmp, 0o777)
    try:
        with _explain_disk_full(path):
            yield tmp
        old = path.with_name(f".{path.name}.old")
        remove_entry(old)  # left by a run killed between the two renames below
        if path.is_symlink() or path.exists():
            os.replace(path, old)  # a link is renamed as a link
        os.replace(tmp, path)
        remove_entry(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def link_or_copy(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Hard-link `src` as `dest`, so that a model staged for the Hub takes no second share of the disk
    (Kaggle gives 20 GB); copy where no link can be made (another file system). Safe because no file
    here is ever written into: a new version replaces it (`atomic_directory`, `atomic_write_bytes`)."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes: how a run recognises that its inputs changed."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
