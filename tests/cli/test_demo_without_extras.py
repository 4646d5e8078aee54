"""``coordgate demo`` with only the core dependencies (no matplotlib, napari, Qt or dask)."""

from __future__ import annotations

import pytest
import subprocess
import sys

import imageio.v3 as iio

# Each of these raises ImportError when imported: as if the extras were not installed.
_BLOCKED = ("matplotlib", "napari", "qtpy", "PyQt5", "PyQt6", "dask", "distributed", "zarr")


@pytest.mark.slow
def test_demo_runs_without_the_extras(tmp_path):
    out = tmp_path / "demo"
    code = (
        "import sys\n"
        f"for name in {_BLOCKED!r}:\n"
        "    sys.modules[name] = None\n"
        "import torch; torch.set_num_threads(1)\n"
        "from napari_coordgate.cli import main\n"
        f"sys.exit(main(['demo', '--quick', '--out', {str(out)!r}, '--device', 'cpu']))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "matplotlib is not installed" in run.stdout and "napari-coordgate[napari]" in run.stdout
    figure = iio.imread(out / "figure.png")
    assert figure.ndim == 3 and figure.shape[0] == 256 and figure.shape[1] > 4 * 256
    assert (out / "deblurred.tif").exists() and (out / "metrics.json").exists()
