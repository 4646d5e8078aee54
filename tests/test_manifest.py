"""The napari manifest: valid, importable, and naming what the plugin promises."""

import re
import subprocess
import sys
from pathlib import Path

from npe2 import PluginManifest

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = ROOT / "src" / "napari_coordgate" / "napari.yaml"


def manifest() -> PluginManifest:
    return PluginManifest.from_file(ROOT / "napari.yaml")


def test_npe2_validate_passes_with_imports():
    npe2 = Path(sys.executable).with_name("npe2")
    result = subprocess.run(
        [str(npe2), "validate", "napari-coordgate", "--imports"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_the_packaged_manifest_is_the_top_level_one():
    assert PACKAGED.is_symlink() and PACKAGED.resolve() == (ROOT / "napari.yaml").resolve()


def test_dock_widgets_and_samples():
    m = manifest()
    assert [w.display_name for w in m.contributions.widgets] == ["Calibration", "Fine-tune", "Deblur", "Gate map"]
    samples = {s.key: s.display_name for s in m.contributions.sample_data}
    assert samples == {
        "beads": "Bead calibration target",
        "blurred_specimen": "Blurred specimen",
        "ground_truth": "Ground truth",
    }


def test_command_ids_and_python_names():
    m = manifest()
    commands = {c.id: c for c in m.contributions.commands}
    for command in commands.values():
        assert command.id.startswith("napari-coordgate.")
        assert re.fullmatch(r"napari_coordgate\._qt\.\w+:\w+", command.python_name), command.python_name
    used = [w.command for w in m.contributions.widgets] + [s.command for s in m.contributions.sample_data]
    used += [r.command for r in m.contributions.readers] + [w.command for w in m.contributions.writers]
    assert sorted(used) == sorted(commands)  # every command is used, once


def test_reader_and_writer():
    m = manifest()
    (reader,) = m.contributions.readers
    assert sorted(reader.filename_patterns) == ["*.npz", "*.safetensors", "*.zip"] and not reader.accepts_directories
    (writer,) = m.contributions.writers
    assert [str(t) for t in writer.layer_types] == ["image"] and writer.filename_extensions == [".npz"]
