"""Chunked (dask) deblurring agrees with the single-process deblur."""

from __future__ import annotations

import numpy as np
import pytest

from napari_coordgate import deblur

da = pytest.importorskip("dask.array")
from napari_coordgate.scale import deblur_dask, plan_chunks, plane_intensity_ranges  # noqa: E402
from napari_coordgate.scale.dask_deblur import overlap_depth  # noqa: E402

FIELD = (160, 144)


@pytest.fixture(scope="module")
def model(cg_model_with_varied_gates):
    return cg_model_with_varied_gates(FIELD, gate_std=0.5)


@pytest.fixture(scope="module")
def stack():
    rng = np.random.default_rng(1)
    return (rng.random((2, 120, 136)) * 3000 + 100).astype(np.uint16)


def _reference(image, model, ranges, offset):
    return np.stack([deblur(p, model, offset=offset, intensity_range=tuple(r), device="cpu") for p, r in zip(image, ranges)])


def _close(a, b, ranges):
    span = float(np.max(ranges[:, 1] - ranges[:, 0]))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * span)


@pytest.mark.parametrize("length, chunk, depth, align, expected", [
    (100, 32, 8, 4, (32, 32, 36)),        # a 4 px remainder is merged
    (100, 30, 8, 4, (32, 32, 36)),        # chunk rounded up to the alignment
    (100, 40, 8, 4, (40, 40, 20)),
    (50, 64, 8, 4, (50,)),
])
def test_plan_chunks(length, chunk, depth, align, expected):
    sizes = plan_chunks(length, chunk, depth, align)
    assert sizes == expected and sum(sizes) == length
    assert all(s >= depth for s in sizes) or len(sizes) == 1


def test_intensity_ranges_exact_for_integers(stack):
    exact = plane_intensity_ranges(stack)
    expected = [np.percentile(p, (1, 99.8)) for p in stack]
    np.testing.assert_allclose(exact, expected)
    lazy = plane_intensity_ranges(da.from_array(stack, chunks=(1, 50, 40)))
    np.testing.assert_allclose(lazy, exact, rtol=1e-12)


def test_intensity_ranges_floats_within_bin(stack):
    data = stack.astype(np.float32) / 7.0
    exact = plane_intensity_ranges(data)
    lazy = plane_intensity_ranges(da.from_array(data, chunks=(1, 50, 40)))
    span = data.max() - data.min()
    np.testing.assert_allclose(lazy, exact, atol=2 * span / 2**16)


@pytest.mark.parametrize("chunk", [40, 64])
def test_chunked_equals_single_process(model, stack, chunk):
    ranges = plane_intensity_ranges(stack)
    offset = (12, 4)
    lazy = deblur_dask(da.from_array(stack, chunks=(1, 37, 53)), model, offset=offset, intensity_range=ranges,
                       chunk_size=chunk, device="cpu")
    assert len(lazy.chunks[-1]) > 1 and lazy.dtype == np.float32
    result = lazy.compute(scheduler="threads")
    _close(result, _reference(stack, model, ranges, offset), ranges)


def test_chunked_numpy_input_and_default_ranges(model, stack):
    plane = stack[0]
    result = deblur_dask(plane, model, chunk_size=48, device="cpu").compute(scheduler="sync")
    ranges = plane_intensity_ranges(plane)
    _close(result, deblur(plane, model, intensity_range=tuple(ranges[0]), device="cpu"), ranges)


def test_overlap_is_aligned(model):
    depth = overlap_depth(model)
    assert depth >= model.receptive_radius and depth % model.alignment == 0


def test_bad_inputs(model, stack):
    with pytest.raises(ValueError, match="does not fit"):
        deblur_dask(stack, model, offset=(100, 0))
    with pytest.raises(ValueError, match="intensity_range"):
        deblur_dask(stack, model, intensity_range=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2D"):
        deblur_dask(da.zeros(10), model)


def test_local_cluster_equals_single_process(model, stack):
    distributed = pytest.importorskip("distributed")
    ranges = plane_intensity_ranges(stack)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            lazy = deblur_dask(da.from_array(stack, chunks=(1, 60, 68)), model, intensity_range=ranges,
                               chunk_size=48, device="cpu")
            result = client.compute(lazy).result()
            assert len(client.scheduler_info()["workers"]) == 2
    _close(result, _reference(stack, model, ranges, (0, 0)), ranges)


def test_cli_deblur_on_a_cluster(model, stack, tmp_path):
    """``coordgate deblur --scheduler ADDRESS`` runs on the cluster and matches the library."""
    distributed = pytest.importorskip("distributed")
    tifffile = pytest.importorskip("tifffile")
    from napari_coordgate import save_model
    from napari_coordgate.cli import main
    from napari_coordgate.files.images import open_image

    save_model(model, tmp_path / "m.safetensors")
    tifffile.imwrite(tmp_path / "in.tif", stack)
    ranges = plane_intensity_ranges(stack)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        code = main(["deblur", str(tmp_path / "in.tif"), str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "out.zarr"),
                     "--scheduler", cluster.scheduler_address, "--chunks", "48", "-q", "--device", "cpu"])
    assert code == 0
    result = np.asarray(open_image(tmp_path / "out.zarr").array)
    _close(result, _reference(stack, model, ranges, (0, 0)), ranges)
