"""A non-editable wheel installs kernels/ and configs/ as hebbjax subpackages, not top level."""

import pathlib
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_wheel_installs_kernels_as_a_subpackage(tmp_path):
  subprocess.run(
      [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
       "-w", str(tmp_path / "dist"), str(ROOT)],
      check=True, capture_output=True, cwd=tmp_path,
  )
  (wheel,) = (tmp_path / "dist").glob("hebbjax-*.whl")
  names = zipfile.ZipFile(wheel).namelist()
  assert "hebbjax/kernels/__init__.py" in names
  assert "hebbjax/configs/cartpole_hebbian.py" in names
  for module in ("layers/reformer.py", "data/duplication.py", "commands/train.py",
                 "lm/hf_reformer.py",
                 "configs/duplication.py", "configs/bytes_lm.py"):
    assert f"hebbjax/{module}" in names, module
  assert not any(n.startswith(("kernels/", "configs/")) for n in names)

  target = tmp_path / "site"
  subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                  str(target), str(wheel)], check=True, capture_output=True)
  code = ("import hebbjax.kernels, hebbjax.layers, hebbjax.configs.cartpole_hebbian as c; "
          "print(hebbjax.kernels.__file__); print(c.get_config().env.name)")
  out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                       cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
  kernels_file, env_name = out.stdout.split()
  assert pathlib.Path(kernels_file).is_relative_to(target)
  assert env_name == "CartPole-v1"
