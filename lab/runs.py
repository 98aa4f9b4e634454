"""Run directories: layout, atomic writes, metadata, and loading runs into DataFrames.

    runs/<experiment>/<task>-<size>-n<heads>-<head type>-s<seed>-<hash>/
        config.json     the full resolved RunConfig
        meta.json       git commit, versions, device, times, status (running|complete|failed|interrupted)
        metrics.jsonl   one JSON object per evaluation (a value that is not finite is `null`)
        summary.json    final metrics and the best step
        checkpoint.pt   model, optimizer, schedule and RNG state (weights_only-loadable)
        SHA256SUMS      checksums of the final files of a complete run (`lab.checkpoints`)
        traceback.txt   the full traceback of a failed run (its one-line error is in meta.json)

Every file is written to a temporary file in the same directory and renamed over the
target, so a reader (or a run killed at any moment) never sees half a file; a full disk or a
read-only filesystem is a `DiskError` naming the file and its device. In a
data-parallel run only rank 0 writes (`atomic_write` does nothing on the other ranks).
Files get the permissions the umask allows (0644 under umask 022), so colleagues on a shared
filesystem can read a run directory. While a process trains a run it holds `run_lock` on
`.lock` in the run directory, so two sweeps on the same directory never train the same config
twice (`flock` on POSIX, `msvcrt.locking` on Windows; where the filesystem supports neither,
runs go ahead unlocked after a warning). Analysis code reads runs only through `load_runs` /
`load_summaries`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from lab.errors import ConfigError

CONFIG, META, METRICS = "config.json", "meta.json", "metrics.jsonl"
SUMMARY, CHECKPOINT, LOCK = "summary.json", "checkpoint.pt", ".lock"
TRACEBACK = "traceback.txt"
DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)}


class Status(str, Enum):
    """Every status a run can have. Members are strings: they equal, print and serialise (in
    meta.json, sweep tables) as their value, e.g. `Status.COMPLETE == "complete"`."""

    # in meta.json, written by the trainer
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    STALE = "stale"  # meta.json says running, but no process holds the run's lock (killed hard)
    # what is found in a run directory
    MISSING = "missing"  # no config.json
    NEW = "new"  # nothing trained yet
    INCOMPLETE = "incomplete"  # same config, to resume
    PARTIAL = "partial"  # a sweep's word for incomplete
    UNKNOWN = "unknown"  # no meta.json
    # outcomes of one run in a sweep (lab/executors.py, lab/sweep.py)
    COMPLETE_ALREADY = "complete already"  # found complete once it held the lock
    SKIPPED = "complete (skipped)"  # found complete when the sweep started
    STORED = "stored"  # complete in the committed results store, with no run directory here
    RUNNING_ELSEWHERE = "running elsewhere"  # another process holds its lock
    NOT_RUN = "not run"
    DEPENDENCY_FAILED = "dependency failed"

    __str__ = str.__str__
    __format__ = str.__format__

    @property
    def done(self) -> bool:
        """Complete, whoever trained it."""
        return self in (Status.COMPLETE, Status.COMPLETE_ALREADY, Status.SKIPPED, Status.STORED)


def writes_here() -> bool:
    """False on every process but rank 0 of an initialised torch.distributed group."""
    dist = sys.modules.get("torch.distributed")  # never imports torch for analysis code
    return dist is None or not dist.is_available() or not dist.is_initialized() or dist.get_rank() == 0


class DiskError(OSError):
    """A file could not be written because its device is full or read-only (one line names both)."""


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem that holds `path` (or would hold it)."""
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def disk_error(path: Path, error: OSError) -> DiskError:
    """The one-line `DiskError` for an OSError from writing `path` on a full or read-only device."""
    what = {errno.EROFS: "is read-only"}.get(error.errno, "is full (no space or quota left)")
    return DiskError(error.errno, f"cannot write {path}: the device mounted at "
                                  f"{mount_point(path)} {what} ({error.strerror}); free space "
                                  "or choose another --out, then rerun")


def atomic_write(path: Path, write: Callable[[Any], None], binary: bool = False) -> None:
    """Call `write(file)` on a temporary file next to `path`, then rename it onto `path`.

    Does nothing on ranks other than 0 of a data-parallel run (they hold the same state). A full
    or read-only device raises `DiskError`; the old file, if any, is left as it was.
    """
    if not writes_here():
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes 0600; a plain open() would honour the umask
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, DiskError) and e.errno in DISK_ERRNOS:
            raise disk_error(path, e) from None
        raise


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS tells it (Linux), else set and
    restored at once under a lock (os.umask can only be read by setting it)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o077)  # restrictive while it is briefly set
        os.umask(mask)
    return mask


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=2, sort_keys=True) + "\n"))


def finite(value: Any) -> Any:
    """`value` with every float that is not finite (NaN, inf) as None, in dicts and lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """JSON Lines that any JSON reader accepts: NaN and infinities are written as `null`."""
    text = "".join(json.dumps(finite(r), sort_keys=True, allow_nan=False) + "\n" for r in rows)
    atomic_write(path, lambda f: f.write(text))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON Lines file; a top-level `null` (a value that was not a finite number, see
    `write_jsonl`) reads back as NaN, so analysis sees what the run measured."""
    path = Path(path)
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{k: math.nan if v is None else v for k, v in r.items()} for r in rows]


def read_meta(run_dir: Path) -> dict[str, Any]:
    """A run's meta.json ({} when absent); a `ConfigError` naming it and the fix when broken."""
    path = Path(run_dir) / META
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path} is unreadable ({type(e).__name__}); delete it: a rerun "
                          "resumes from the checkpoint and writes a new one") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{path} is not a JSON object; delete it: a rerun writes a new one")
    return meta


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the source tree this code runs from (None outside git)."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True,
                                timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=root,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"commit": commit, "dirty": dirty if commit else None}


def cpu_info() -> dict[str, Any]:
    """CPU model, the kernel ISA torch dispatches to (e.g. AVX2, AVX512) and its thread count:
    what decides whether two machines' runs of one config agree bitwise."""
    import torch
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    return {"model": model or platform.processor() or platform.machine(),
            "capability": capability() if capability else None,
            "threads": torch.get_num_threads()}


def environment() -> dict[str, Any]:
    """Versions and machine of a run (`meta.json`): same config and seed give the same metrics
    bitwise on one machine and thread count; see the README for what holds across machines."""
    import numpy
    import torch
    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "numpy": numpy.__version__,
            "platform": platform.platform(), "hostname": platform.node(), "cpu": cpu_info()}


def prepare_run_dir(root: Path, experiment: str, run_name: str,
                    config: dict[str, Any]) -> tuple[Path, Status]:
    """Validate where a run will live, without creating anything.

    Returns the directory and its state: `new`, `complete` (same config, finished) or
    `incomplete` (same config, to resume). A directory that holds a different config, or an
    output root that is a file, is a `ConfigError`: nothing is ever overwritten.
    """
    root = Path(root)
    for parent in [root, *root.parents]:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"--out {root} is not a directory ({parent} is a file)")
    run_dir = root / experiment / run_name
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} exists and is a file")
    config_path = run_dir / CONFIG
    if not config_path.exists():
        return run_dir, Status.NEW
    try:
        existing = read_json(config_path)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{config_path} is unreadable ({e}); move it away to rerun") from None
    if existing != config:
        raise ConfigError(f"{run_dir} holds a different config; refusing to overwrite it")
    meta = read_meta(run_dir)
    done = meta.get("status") == Status.COMPLETE and (run_dir / SUMMARY).exists()
    return run_dir, Status.COMPLETE if done else Status.INCOMPLETE


class RunLocked(RuntimeError):
    """Another process holds the run's lock (it is training that config right now)."""


_NO_LOCK_ERRNOS = {errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP,
                   getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}
_warned_unlocked = False


def _try_lock(fd: int) -> bool | None:
    """Take an exclusive, non-blocking lock on `fd`: True if taken, False if another process
    holds it, None where neither the OS nor the filesystem can lock (fcntl is imported here,
    not at the top, so the module imports on Windows)."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        import msvcrt  # Windows: lock the first byte; the OS drops it when the process dies
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except ImportError:
        return None
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in _NO_LOCK_ERRNOS:
            return None
        if fcntl is None and e.errno in (errno.EACCES, errno.EDEADLK):  # msvcrt: the byte is locked
            return False
        raise


def _unlock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _warn_unlocked(run_dir: Path) -> None:
    """One line on stderr, once per process, where runs cannot be locked."""
    global _warned_unlocked
    if not _warned_unlocked:
        _warned_unlocked = True
        print(f"warning: cannot lock {run_dir / LOCK} (this filesystem has no flock): runs go "
              "ahead unlocked, so two sweeps on one directory may train the same run at once"
              , file=sys.stderr)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on `run_dir/.lock` (raises `RunLocked` if taken).

    The OS drops the lock when its process dies, so a killed run never blocks a rerun.
    The file is removed once the run is complete: whoever opened it meanwhile and gets the
    lock next re-reads the status, finds the run complete, and skips it. On a filesystem
    without locks the run goes ahead unlocked, with a warning (once per process).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        taken = _try_lock(fd)
        if taken is False:
            raise RunLocked(f"{run_dir} is being trained by another process")
        if taken is None:
            _warn_unlocked(run_dir)
        try:
            yield
        finally:
            if run_state(run_dir) == Status.COMPLETE:
                # Windows cannot remove an open file: it stays, unlocked
                with contextlib.suppress(OSError):
                    os.unlink(run_dir / LOCK)
            if taken:
                _unlock(fd)
    finally:
        os.close(fd)


def is_locked(run_dir: Path) -> bool:
    """Whether some process holds the run's lock right now (a probe; takes nothing)."""
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        taken = _try_lock(fd)
        if taken:
            _unlock(fd)
        return taken is False
    finally:
        os.close(fd)  # closing releases a lock this probe may have taken


def run_state(run_dir: Path) -> Status:
    """`missing` (no config.json), `complete`, or the status in meta.json (`running`, `failed`,
    `interrupted`), else `new`. A run that meta.json calls running but whose lock no process holds
    (killed hard, e.g. SIGKILL or a power cut) is `stale`; a broken meta.json is `unknown`."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).exists():
        return Status.MISSING
    try:
        meta = read_meta(run_dir)
    except ConfigError:
        return Status.UNKNOWN
    return live_status(run_dir, meta.get("status", Status.NEW))


def live_status(run_dir: Path, status: str) -> Status | str:
    """The status meta.json records, with `running` checked against the run's lock: `stale` when
    nobody holds it, and a `complete` run without summary.json read as stale."""
    if status == Status.COMPLETE and not (Path(run_dir) / SUMMARY).exists():
        return Status.STALE
    if status == Status.RUNNING and not is_locked(run_dir):
        return Status.STALE
    return status


def iter_run_dirs(root: Path) -> Iterator[Path]:
    """Every directory under `root` that contains a config.json, sorted."""
    root = Path(root)
    if not root.exists():
        return iter(())
    return iter(sorted(p.parent for p in root.rglob(CONFIG)))


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"d_model": 8}} -> {"model.d_model": 8}; lists become tuples."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = tuple(value) if isinstance(value, list) else value
    return out


def run_record(run_dir: Path) -> dict[str, Any]:
    """Config fields (flattened), status and identifiers of one run."""
    config = read_json(run_dir / CONFIG)
    try:
        status = live_status(run_dir, read_meta(run_dir).get("status", Status.UNKNOWN))
    except ConfigError:
        status = Status.UNKNOWN
    record = flatten(config)
    record.update({"run_dir": str(run_dir), "run_name": run_dir.name, "status": status})
    return record


def load_runs(root: Path):
    """One row per run and evaluation step: config columns plus every metric."""
    import pandas as pd
    rows = []
    for run_dir in iter_run_dirs(root):
        record = run_record(run_dir)
        for metrics in read_jsonl(run_dir / METRICS):
            rows.append({**record, **metrics})
    return pd.DataFrame(rows)


def load_summaries(root: Path):
    """One row per run: config columns, status and the final/best metrics of summary.json.

    `primary` and `best_primary` hold the final and best value of the task's primary metric
    (named in `primary_metric`), so runs of different tasks share one column.
    """
    import pandas as pd
    rows = []
    for run_dir in iter_run_dirs(root):
        record = run_record(run_dir)
        if (run_dir / SUMMARY).exists():
            summary = read_json(run_dir / SUMMARY)
            record.update(flatten(summary))
            name = summary.get("primary_metric")
            record["primary"] = summary.get("final", {}).get(name, float("nan"))
            record["best_primary"] = summary.get("best", {}).get(name, float("nan"))
        rows.append(record)
    return pd.DataFrame(rows)


if __name__ == "__main__":  # `python -m lab.runs ROOT`: the table of runs (see lab/table.py)
    from lab.table import main
    sys.exit(main())
