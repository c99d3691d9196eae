"""Atomic output: files appear whole, and with the permissions a plain open() would give."""

import os

import pytest

from novic.io import atomic_path, write_json


def test_atomic_files_follow_the_umask(tmp_path):
    """mkstemp makes 0600 files; results must be readable by a project group, as open() does."""
    write_json({"a": 1}, tmp_path / "x.json")
    (tmp_path / "plain.txt").write_text("x")
    mode = (tmp_path / "x.json").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.txt").stat().st_mode & 0o777
    assert mode & 0o044 == 0o044 or os.umask(os.umask(0)) & 0o044  # readable unless umask says no


def test_writers_that_replace_the_file_still_follow_the_umask(tmp_path):
    """safetensors writes a new 0600 file in place of the temporary one (decoders, towers)."""
    import torch
    from safetensors.torch import save_file

    with atomic_path(tmp_path / "w.safetensors") as tmp:
        save_file({"w": torch.zeros(2)}, str(tmp))
    (tmp_path / "plain.txt").write_text("x")
    mode = (tmp_path / "w.safetensors").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.txt").stat().st_mode & 0o777


def test_a_failed_block_leaves_nothing(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists() and not list(tmp_path.iterdir())
