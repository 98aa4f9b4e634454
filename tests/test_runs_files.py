"""Run directories on shared filesystems: files honour the umask, lab.runs imports without fcntl
(Windows), and a filesystem without flock runs unlocked after one warning line."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lab import runs
from tests.conftest import REPO, run_cli


@pytest.mark.skipif(os.name != "posix", reason="permission bits and umask are POSIX")
def test_a_run_written_under_umask_022_is_readable_by_group_and_others(tmp_path: Path, tiny_overrides) -> None:
    args = ["lab.run", "induction", "--heads", "2", "--steps", "4", "--out", str(tmp_path), "--quiet",
            *[f"--set={o}" for o in tiny_overrides]]
    result = run_cli(args, umask=0o022)
    assert result.returncode == 0, result.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {runs.CONFIG, runs.META, runs.METRICS, runs.SUMMARY, runs.CHECKPOINT} <= names
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert all(mode == 0o644 for mode in modes.values()), {k: oct(m) for k, m in modes.items()}


@pytest.mark.skipif(os.name != "posix", reason="permission bits and umask are POSIX")
def test_atomic_write_follows_a_stricter_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        runs.write_json(tmp_path / "private.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
    assert runs.current_umask() == old


def test_lab_runs_imports_and_runs_unlocked_without_fcntl(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['fcntl'] = None\n"
            "from pathlib import Path\n"
            "from lab import runs\n"
            f"run_dir = Path({str(tmp_path / 'run')!r})\n"
            "with runs.run_lock(run_dir):\n"
            "    runs.write_json(run_dir / 'config.json', {'a': 1})\n"
            "    print('locked:', runs.is_locked(run_dir))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "locked: False"  # nothing can lock here: the run goes ahead
    (warning,) = result.stderr.strip().splitlines()
    assert warning.startswith("warning: cannot lock") and "unlocked" in warning
    assert runs.read_json(tmp_path / "run" / "config.json") == {"a": 1}


def test_a_filesystem_without_flock_runs_unlocked_with_one_warning(tmp_path: Path, monkeypatch, capsys) -> None:
    fcntl = pytest.importorskip("fcntl", reason="flock is POSIX")

    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    monkeypatch.setattr(runs, "_warned_unlocked", False)
    for name in ("a", "b"):
        with runs.run_lock(tmp_path / name):
            assert not runs.is_locked(tmp_path / name)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no flock" in err[0]
