"""run.devices: one CPU device per core before JAX starts, the user's XLA_FLAGS kept, a forced
count, and the devices a run takes (one-line errors naming the field)."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import pytest

from hebbjax.run import devices
from tiny_runs import child_env

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from hebbjax.run import devices
    set_to = devices.use_all_cpu_cores() if sys.argv[1] == "auto" else devices.configure(
        int(sys.argv[1]))
    import jax
    print(json.dumps({"set": set_to, "devices": len(jax.devices()),
                      "cores": len(os.sched_getaffinity(0)), "again": devices.configure(3)}))
""")


def child(setting, device_count=None):
  out = subprocess.run([sys.executable, "-c", SCRIPT, str(setting)], capture_output=True,
                       text=True, check=True, timeout=300, env=child_env(device_count))
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_use_all_cpu_cores_gives_one_device_per_core_of_the_affinity():
  result = child("auto")
  assert result["devices"] == result["cores"] == len(os.sched_getaffinity(0))
  assert result["set"] == result["cores"]
  assert result["again"] is None               # JAX has started: the count no longer changes


def test_a_count_is_forced_unless_xla_flags_already_sets_one():
  assert child(3)["devices"] == 3
  kept = child("auto", device_count=5)        # the user's XLA_FLAGS wins
  assert kept["devices"] == 5 and kept["set"] is None


@pytest.mark.parametrize("value", [0, -2, "many", 1.5, True])
def test_bad_settings_are_one_line_naming_run_devices(value):
  with pytest.raises(ValueError, match=r"^run\.devices=.*expected 'auto' or a positive number"):
    devices.check(value)


def test_select_takes_the_divisors_of_the_work_and_refuses_more_than_exist():
  local = len(jax.local_devices())
  assert devices.select("auto") == jax.local_devices()
  assert devices.check("2") == 2 and devices.check(None) == "auto"
  with pytest.raises(ValueError, match=rf"^run\.devices={local + 1}: this process has {local} "):
    devices.select(local + 1)
  assert devices.forced_count("--foo --xla_force_host_platform_device_count=6") == 6
  assert devices.forced_count("--foo") is None


def test_auto_splits_work_evenly_and_a_forced_count_names_the_work(tmp_path):
  script = textwrap.dedent("""
      import json
      from hebbjax.run import devices
      out = {"auto": {n: len(devices.select("auto", divides=n)) for n in (12, 8, 7, 1)}}
      try:
        devices.select(4, divides=6, divides_field="data.batch_size")
      except ValueError as error:
        out["error"] = str(error)
      print(json.dumps(out))
  """)
  out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       check=True, timeout=300, env=child_env(6), cwd=tmp_path)
  result = json.loads(out.stdout.strip().splitlines()[-1])
  # The largest count <= 6 that divides the work: 12 -> 6, 8 -> 4, 7 (prime) -> 1, 1 -> 1.
  assert result["auto"] == {"12": 6, "8": 4, "7": 1, "1": 1}
  assert result["error"] == ("data.batch_size=6: does not split over the 4 devices of "
                             "run.devices=4 (expected a multiple of 4)")
