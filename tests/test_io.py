"""Atomic writes: what a failure leaves behind, what it says, and the permissions of what is written."""

from __future__ import annotations

import errno
import os
import shutil
from collections import namedtuple

import pytest

from junglegpt import io

TORCH_DISK_FULL = ("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                   "data/0: file write failed")
Usage = namedtuple("Usage", "total used free")


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   RuntimeError(TORCH_DISK_FULL),
                                   Exception("I/O error: No space left on device (os error 28)")])
def test_a_full_disk_is_explained_whatever_library_was_writing(tmp_path, monkeypatch, error):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9, 1024))
    target = tmp_path / "models" / "1M" / "training" / "step_000100"
    with pytest.raises(io.DiskFullError, match=r"The disk is full while writing .*step_000100. Free some space"):
        with io.atomic_directory(target):
            raise error
    assert not target.exists() and not list(target.parent.glob(".*.tmp")), "nothing half-written is left"


def test_a_torch_write_error_with_space_left_is_not_called_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**12, 10**9, 10**11))
    with pytest.raises(RuntimeError, match="file write failed"):
        with io.atomic_directory(tmp_path / "step_000100"):
            raise RuntimeError(TORCH_DISK_FULL)


def test_written_files_and_folders_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        file = io.atomic_write_json(tmp_path / "results.json", {"ok": True})
        with io.atomic_directory(tmp_path / "model") as folder:
            (folder / "config.json").write_text("{}")
    finally:
        os.umask(old)
    assert file.stat().st_mode & 0o777 == 0o644  # not 0600: results are meant to be shared
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o755  # not 0700


def test_out_dir_drive_mounts_google_drive_on_colab_and_refuses_elsewhere(tmp_path, monkeypatch):
    import sys
    import types

    from junglegpt import paths

    monkeypatch.setenv(paths.DRIVE_MOUNT_ENV, str(tmp_path / "drive"))
    with pytest.raises(ValueError, match="Colab only"):
        paths.resolve_out_dir("drive")
    mounted = []
    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    out = paths.resolve_out_dir("drive")
    assert mounted == [str(tmp_path / "drive")]
    assert out.root == tmp_path / "drive" / "MyDrive" / "junglegpt" and out.data.is_dir()


def test_when_drive_cannot_be_mounted_colab_falls_back_to_content_and_says_so(tmp_path, monkeypatch, capsys):
    import sys
    import types

    from junglegpt import paths

    def refuse(mount):
        raise RuntimeError("mount failed")

    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=refuse)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setenv(paths.COLAB_CONTENT_ENV, str(tmp_path / "content"))
    out = paths.resolve_out_dir("drive")
    assert out.root == tmp_path / "content" / "junglegpt" and out.data.is_dir()
    said = capsys.readouterr().out
    assert "Google Drive could not be mounted (RuntimeError: mount failed)" in said and "lost when the session" in said


def test_an_earlier_notebooks_output_attached_on_kaggle_is_linked_in(tmp_path, monkeypatch):
    """Kaggle: 03 ran in another session, and its output folder is attached as data to this one."""
    from junglegpt import paths

    earlier = paths.OutputDirs(tmp_path / "input" / "junglegpt-train-1m" / "junglegpt")
    for path in (earlier.train_txt, earlier.val_txt, earlier.tokenizer / "tokenizer.json",
                 earlier.model("1M") / "metrics.json", earlier.model("3M") / "config.json"):  # 3M unfinished
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    monkeypatch.setenv(paths.KAGGLE_INPUT_ENV, str(tmp_path / "input"))
    monkeypatch.setenv(paths.KAGGLE_WORKING_ENV, str(tmp_path / "working"))
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    here = tmp_path / "working" / "junglegpt"  # Kaggle's default output folder
    (here / "models" / "7M").mkdir(parents=True)  # trained here already: kept
    out = paths.resolve_out_dir(here)
    assert (out.model("1M") / "metrics.json").exists() and out.train_txt.exists() and out.tokenizer.is_dir()
    assert not out.model("3M").exists() and not (out.model("7M")).is_symlink()
    assert paths.link_attached_outputs(out) == []  # a second time: nothing more to link


def test_a_staged_model_is_a_link_where_one_can_be_made_and_a_copy_where_not(tmp_path, monkeypatch):
    (tmp_path / "weights").write_bytes(b"tensors")
    io.link_or_copy(tmp_path / "weights", tmp_path / "linked")
    assert (tmp_path / "linked").stat().st_ino == (tmp_path / "weights").stat().st_ino

    def cross_device(src, dest):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(io.os, "link", cross_device)
    io.link_or_copy(tmp_path / "weights", tmp_path / "copied")
    assert (tmp_path / "copied").read_bytes() == b"tensors"
    assert (tmp_path / "copied").stat().st_ino != (tmp_path / "weights").stat().st_ino
