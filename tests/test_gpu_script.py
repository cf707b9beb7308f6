"""`.ci/gpu`, the one-call GPU check, runs through on the CPU with only the GPU machine's packages."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_ON_THE_GPU_MACHINE = ("streamlit", "pytorch_grad_cam", "plotly", "pandas", "cv2", "imagecorruptions")


@pytest.mark.slow
def test_gpu_check_runs_on_the_cpu_without_the_app_and_analysis_extras(tmp_path):
    shadow = tmp_path / "missing"
    shadow.mkdir()
    for name in NOT_ON_THE_GPU_MACHINE:  # importing any of these fails, as on the GPU machine
        (shadow / f"{name}.py").write_text('raise ImportError("not installed on the GPU machine")\n')
    env = dict(os.environ, PYTHONPATH=str(shadow), OUT=str(tmp_path / "out"), OMP_NUM_THREADS="1")
    done = subprocess.run(["bash", str(ROOT / ".ci" / "gpu"), "--device", "cpu", "--quick"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    summary = done.stdout.split("=== summary")[-1]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    for step in ("msda-tests", "corrupt-tests", "msda-bench", "train-bench", "corrupt-bench"):
        assert f"\n{step}" in summary and "FAIL" not in summary, summary
    assert " passed" in summary


def test_gpu_check_refuses_a_missing_device_and_bad_arguments():
    bad = subprocess.run(["bash", str(ROOT / ".ci" / "gpu"), "--device", "tpu"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--device must be cuda or cpu" in bad.stderr
    if sys.platform == "linux":
        import torch

        if not torch.cuda.is_available():
            missing = subprocess.run(["bash", str(ROOT / ".ci" / "gpu")], capture_output=True, text=True)
            assert missing.returncode == 2 and "no CUDA device" in missing.stderr
