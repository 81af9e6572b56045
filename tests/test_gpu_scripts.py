"""The prepared GPU scripts (benchmarks/gpu_check.sh, gpu_prepare.sh) are valid shell, refuse
a call without parts in one line, and name only scripts that exist. Their parts run on CPU with
tiny settings (VERSUS_ARGS, ACCURACY_ARGS, WORKERS_ARGS); the parts' own tests are in
test_versus_torch.py, test_time_to_accuracy.py and test_tune_workers.py; the peer scripts they
call start from any folder."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("benchmarks/gpu_check.sh", "benchmarks/gpu_prepare.sh")


@pytest.mark.parametrize("script", SCRIPTS)
def test_gpu_script_is_valid_shell_and_needs_arguments(script):
    assert subprocess.run(["bash", "-n", script], cwd=ROOT).returncode == 0
    done = subprocess.run(["bash", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("usage:") and len(done.stderr.strip().splitlines()) == 1


def test_gpu_check_names_existing_scripts():
    text = "".join((ROOT / script).read_text() for script in (
        "benchmarks/gpu_check.sh", "benchmarks/gpu_versus_torch.sh", "benchmarks/bench_gpu.sh"))
    named = set(re.findall(r"benchmarks/[\w.]+\.(?:sh|py)", text))
    assert {"benchmarks/gpu_versus_torch.sh", "benchmarks/time_to_accuracy.py",
            "benchmarks/tune_workers.py", "benchmarks/gpu_prepare.sh",
            "benchmarks/versus_torch.py", "benchmarks/bench_peers.py"} <= named
    missing = [name for name in named if not (ROOT / name).is_file()]
    assert not missing, missing


@pytest.mark.parametrize("script", ["benchmarks/versus_torch.py", "benchmarks/bench_peers.py"])
def test_peer_scripts_run_from_anywhere(script, tmp_path):
    """The scripts the GPU run calls put the checkout on sys.path themselves: they start from
    another folder with no PYTHONPATH (the installed package alone never has benchmarks/)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(ROOT / script), "--help"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--json" in done.stdout
