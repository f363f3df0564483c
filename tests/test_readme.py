"""The README's Python examples run verbatim from the repository root, against a non-editable
install (the source folder then shadows the installed package: hebbjax.kernels and
hebbjax.configs must still import)."""

import pathlib
import re
import subprocess
import sys
import sysconfig

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """Environment of a Python that sees a wheel of this checkout installed (not editable) and the
  test environment's dependencies, and no .pth file (no editable finder): ``python -S``."""
  tmp = tmp_path_factory.mktemp("wheel")
  subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                  "-w", str(tmp / "dist"), str(ROOT)], check=True, capture_output=True, cwd=tmp)
  (wheel,) = (tmp / "dist").glob("hebbjax-*.whl")
  subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                  str(tmp / "site"), str(wheel)], check=True, capture_output=True)
  path = [str(tmp / "site"), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
  return {"PYTHONPATH": ":".join(path), "PATH": "/usr/bin:/bin", "HOME": str(tmp),
          "JAX_PLATFORMS": "cpu"}


def run_from_root(code: str, env) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)


def test_the_source_tree_shadows_the_install_and_finds_kernels_and_configs(installed):
  out = run_from_root("import hebbjax, hebbjax.kernels, hebbjax.configs.cartpole_hebbian as c; "
                      "print(hebbjax.__file__); print(hebbjax.kernels.__file__); "
                      "print(c.__file__)", installed)
  assert out.returncode == 0, out.stderr[-2000:]
  package, kernels, config = map(pathlib.Path, out.stdout.split())
  assert package == ROOT / "hebbjax" / "__init__.py"       # the source folder, as in the README
  assert kernels == ROOT / "kernels" / "__init__.py"
  assert config == ROOT / "configs" / "cartpole_hebbian.py"


def test_readme_has_python_examples():
  assert len(BLOCKS) >= 2 and all("import" in block for block in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs_verbatim(installed, index):
  out = run_from_root(BLOCKS[index], installed)
  assert out.returncode == 0, f"README block {index}:\n{BLOCKS[index]}\n{out.stderr[-3000:]}"
