"""Shared set-up for every test.

The folders under ``tests/`` mirror the package (``tests/psf/beads`` tests
``napari_coordgate.psf.beads``, ``tests/_qt`` the widgets); package-wide tests
sit at the top. The folders have no ``__init__.py``: pytest imports each test
file by its bare name, so every test file name must be unique in the whole tree.

Helper modules at the top of ``tests/`` (``_psf_checks``) are imported by bare
name from any folder, so this folder is put on ``sys.path`` here, whatever
``--import-mode`` is used.
"""

import sys
from pathlib import Path

import pytest
import torch

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from napari_coordgate import CGUNet  # noqa: E402 (after the path set-up)



@pytest.fixture
def one_torch_thread():
    """torch on one thread during the test, the earlier count given back after it.

    Small networks run fastest on one thread, above all on a machine shared with other work.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cg_model_with_varied_gates():
    """Make an untrained CG U-Net (in eval mode) whose gates clearly change across the field.

    Untrained gates are about 1 everywhere; the gate MLPs' last layers are drawn
    again with standard deviation ``gate_std`` so that gate maps and local kernels
    differ from place to place.
    """
    def make(field_shape, depth: int = 3, base_channels: int = 4, gate_std: float = 1.0) -> CGUNet:
        torch.manual_seed(0)
        model = CGUNet(depth=depth, field_shape=field_shape, base_channels=base_channels)
        for _, _, block in model.gated_blocks():
            torch.nn.init.normal_(block.gate.out.weight, std=gate_std)
        return model.eval()

    return make
