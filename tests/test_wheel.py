"""The built wheel, installed into a fresh virtual environment, runs from outside the repo."""

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repo(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
                   check=True, capture_output=True, env=env)
    wheel = next(dist.glob("symbackprop-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True, env=env)
    work = tmp_path / "elsewhere"
    work.mkdir()
    exe = env_dir / "bin" / "symbackprop"
    res = subprocess.run([str(exe), "derive", "--no-pdf", "-o", "out"], cwd=work, capture_output=True, text=True,
                         env=env, check=False)
    assert res.returncode == 0, res.stderr
    assert "verification PASSED" in res.stdout
    for name in ("gradients.json", "gradients.txt", "derivation.tex", "derivation.md", "model.py", "test_model.py"):
        assert (work / "out" / name).is_file(), name  # templates travel inside the wheel
    res = subprocess.run([str(exe), "derive", "--no-pdf", "--verify", "none", "--target", "array-api", "-o", "xp"],
                         cwd=work, capture_output=True, text=True, env=env, check=False)
    assert res.returncode == 0, res.stderr
    assert (work / "xp" / "model_xp.py").is_file() and (work / "xp" / "test_model_xp.py").is_file()
    # the installed package is the wheel's, not the repo's
    where = subprocess.run([str(py), "-c", "import symbackprop; print(symbackprop.__file__)"], cwd=work,
                           capture_output=True, text=True, check=True, env=env).stdout
    assert str(ROOT) not in where
