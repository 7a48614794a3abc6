"""The registry's disk and database failing under it: what must hold afterwards.

- a full disk while a blob or the database is written: one ``RegistryError`` naming the
  folder, nothing half-written (no row, no temp file), and saves work again once there is room;
- a read-only registry folder: reads work, writes refuse with one line;
- a registry locked by another process past the busy timeout: one line that says so;
- a blob altered on disk and a database cut short: ``llmops doctor`` names them, the rest reads.

The disk cases need a small tmpfs of their own (``unshare -m`` plus ``mount``, as root); where
the machine does not allow that they are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llmops_magics.errors import IntegrityError, RegistryError
from llmops_magics.store import Registry

pytestmark = pytest.mark.faults

DISK_CHILD = Path(__file__).with_name("disk_child.py")


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "LLMOPS_WANDB_MODE": "disabled", **extra}


def _namespaced_tmpfs_works() -> str | None:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return "needs root and unshare to mount a small tmpfs"
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && umount /mnt"],
        capture_output=True,
        text=True,
    )
    return None if probe.returncode == 0 else f"cannot mount a tmpfs here: {probe.stderr.strip()}"


@pytest.fixture(scope="module")
def disk_report(tmp_path_factory) -> dict:
    reason = _namespaced_tmpfs_works()
    if reason:
        pytest.skip(reason)
    mount = tmp_path_factory.mktemp("tmpfs")
    script = f"mount -t tmpfs -o size=1m tmpfs {mount} && exec {sys.executable} {DISK_CHILD} {mount}"
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("write", ["db_full", "blob_full", "tree_full"])
def test_a_full_disk_is_one_clear_error_and_leaves_nothing_half_written(disk_report, write):
    assert disk_report[write].startswith("RegistryError: the disk holding the registry"), disk_report[write]
    assert "is full; nothing was written" in disk_report[write]
    assert disk_report["tmp_left"] == []  # no temp blob left behind
    assert disk_report["names_after_full"] == ["kept"]  # no row for any failed save
    assert disk_report["kept_reads"] == "kept {{ x }}"


def test_saves_work_again_once_there_is_room_and_the_registry_verifies(disk_report):
    assert disk_report["after_free"] == "ok"
    assert disk_report["verify_after_full"] == []


def test_a_read_only_registry_reads_and_refuses_writes_in_one_line(disk_report):
    assert disk_report["ro_read"] == "room again"
    assert disk_report["ro_names"] == ["kept", "new-bytes"]
    for write in ("ro_save_same_bytes", "ro_save_new_bytes", "ro_tag"):
        assert disk_report[write].startswith("RegistryError: the registry ")
        assert disk_report[write].endswith("is on a read-only file system: it can be read, not written")


HOLDER = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")  # the write lock, held
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


def test_a_lock_held_past_the_busy_timeout_is_one_line_and_the_next_try_works(tmp_path):
    home = tmp_path / "reg"
    Registry(home).save("prompt", "p", data=b"one")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home / "registry.db"), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        reg = Registry(home, busy_timeout=0.5)
        assert reg.read_bytes("prompt://p") == b"one"  # WAL: readers are not blocked by a writer
        started = time.monotonic()
        with pytest.raises(RegistryError, match=r"locked by another process and stayed locked for 0.5 s"):
            reg.save("prompt", "p", data=b"two")
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
    assert reg.save("prompt", "p", data=b"two").artifact.version == 2
    assert reg.verify().ok


def _doctor(home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llmops_magics.adapters.cli", "--home", str(home), "doctor"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_blob_altered_on_disk_is_named_by_doctor_and_other_reads_work(tmp_path):
    home = tmp_path / "reg"
    reg = Registry(home)
    bad = reg.save("prompt", "bad", data=b"original text")
    reg.save("prompt", "good", data=b"untouched")
    path = reg.blobs.path(bad.artifact.payload)
    path.write_bytes(b"0riginal text")
    with pytest.raises(IntegrityError, match="does not match its digest"):
        reg.read_bytes("prompt://bad")
    assert reg.read_bytes("prompt://good") == b"untouched"
    result = _doctor(home)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "prompt://bad/1" in result.stdout and "altered on disk" in result.stdout
    assert "prompt://good" not in result.stdout


def _registry_with_many_rows(home: Path) -> None:
    reg = Registry(home)
    reg.save("prompt", "first", data=b"written first")
    for i in range(400):  # enough rows that the artifacts table spans many pages
        reg.save("prompt", f"filler-{i:03d}", data=f"filler {i} ".encode() * 20)
    reg.close()  # checkpoints the WAL into registry.db
    assert not (home / "registry.db-wal").exists()


def test_a_damaged_database_page_is_named_by_doctor_and_rows_elsewhere_read(tmp_path):
    home = tmp_path / "reg"
    _registry_with_many_rows(home)
    db = home / "registry.db"
    with sqlite3.connect(db) as conn:  # the last leaf page of the artifacts table: the newest rows
        (page,) = conn.execute(
            "SELECT pageno FROM dbstat WHERE name='artifacts' AND pagetype='leaf' ORDER BY pageno DESC LIMIT 1"
        ).fetchone()
    with open(db, "r+b") as fh:
        fh.seek((page - 1) * 4096)
        fh.write(b"\xff" * 4096)
    result = _doctor(home)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "problem: database: the registry database in" in result.stdout and "is damaged" in result.stdout
    assert "Traceback" not in result.stderr
    reg = Registry(home)
    assert reg.read_bytes("prompt://first/1") == b"written first"  # its page is intact
    with pytest.raises(IntegrityError, match="damaged"):
        reg.read_bytes("prompt://filler-399/1")  # its page is not: one clear error, not a crash


def test_a_database_cut_short_is_named_by_doctor_without_a_traceback(tmp_path):
    home = tmp_path / "reg"
    _registry_with_many_rows(home)
    db = home / "registry.db"
    os.truncate(db, db.stat().st_size - 4096)
    result = _doctor(home)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the database cannot be opened" in result.stdout and "is damaged" in result.stdout
    assert "restore" in result.stdout and "Traceback" not in result.stderr
    with pytest.raises(IntegrityError, match="damaged"):
        Registry(home)
