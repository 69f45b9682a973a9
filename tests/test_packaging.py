"""The distribution installs one import name, ``hashmem``, and nothing else at the top level.

The built wheel goes into a fresh venv; the test compares site-packages before
and after, then imports the front door and runs the script from that install
(the dependencies come from the test's own environment through a .pth file,
so nothing is downloaded and the editable install is not on the path).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str, cwd: Path | None = None, env: dict | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(ROOT))
    (found,) = out.glob("hashmem-*.whl")
    return found


def test_wheel_holds_only_the_hashmem_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"hashmem"}
    for sub in ("memory", "decoders", "cli"):
        assert f"hashmem/{sub}/__init__.py" in names


def test_fresh_venv_gains_one_top_level_name(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    py = venv / "bin" / "python"
    site = Path(_run(str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    before = set(os.listdir(site))
    _run(str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel))
    added = {n for n in set(os.listdir(site)) - before if not n.endswith((".dist-info", ".pth"))}
    assert added == {"hashmem"}

    # the dependencies from this environment, after the wheel's own files
    (site / "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = _run(
        str(py),
        "-c",
        "import hashmem, hashmem.cli.main; from hashmem import Memory, open_decoder; "
        "print(hashmem.__file__); print(Memory.__module__)",
        cwd=tmp_path,
        env=env,
    ).split()
    assert where[0].startswith(str(site)), where
    assert where[1] == "hashmem.memory.store"
    help_text = _run(str(venv / "bin" / "hashmem"), "--help", cwd=tmp_path, env=env)
    assert "Quick start" in help_text
