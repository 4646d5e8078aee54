"""Stopping a calibration from another thread: it ends within about a second and leaves nothing."""

import threading
import time

import pytest

from napari_coordgate.cancellation import Cancelled, cancellable, cancelled_by, check_cancelled
from napari_coordgate.psf import calibrate_from_beads, calibrate_from_pair, render_bead_target, simulate_lens


def test_check_raises_only_inside_a_cancelled_block():
    event = threading.Event()
    check_cancelled()  # no block: nothing to stop
    with cancelled_by(event):
        check_cancelled()
        event.set()
        with pytest.raises(Cancelled):
            check_cancelled()
    check_cancelled()  # the block is left: its event no longer applies
    with pytest.raises(TypeError, match="threading.Event"):
        with cancelled_by(True):
            pass


def test_each_thread_sees_only_its_own_event():
    event, seen = threading.Event(), []

    def other():
        try:
            check_cancelled()
            seen.append("ran")
        except Cancelled:
            seen.append("cancelled")

    with cancelled_by(event):
        event.set()
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen == ["ran"]


def test_cancellable_adds_the_keyword():
    @cancellable
    def work(x, *, y=1):
        check_cancelled()
        return x + y

    assert work(1) == 2
    assert "cancel" in str(__import__("inspect").signature(work))
    done = threading.Event()
    done.set()
    with pytest.raises(Cancelled):
        work(1, cancel=done)


@pytest.fixture(scope="module")
def slide():
    lens = simulate_lens((160, 160), grid=(4, 4), psf_size=25, defocus_edge=0.7, coma_edge=0.3)
    image, _ = render_bead_target(lens, n_beads=50, brightness=(2000, 20000), seed=3)
    return image


def test_a_bead_calibration_reports_as_it_goes_and_stops_soon_after_cancel(slide):
    """Messages arrive while the fit runs; once the first fit's rounds are reported, Cancel ends it quickly."""
    cancel, messages, stamps = threading.Event(), [], {}

    def report(message: str) -> None:
        messages.append(message)
        if message.startswith("round ") and "cancelled_at" not in stamps:
            stamps["cancelled_at"] = time.perf_counter()
            cancel.set()

    with pytest.raises(Cancelled):
        calibrate_from_beads(slide, na=0.8, wavelength_nm=520.0, pixel_size_nm=130.0, report=report, cancel=cancel)
    latency = time.perf_counter() - stamps["cancelled_at"]
    assert messages[0] == "detecting beads" and any(m.startswith("fitting ") for m in messages)
    assert latency < 1.0, f"the calibration went on for {latency:.2f} s after Cancel"


def test_a_cancel_set_before_the_start_stops_a_pair_calibration(slide):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        calibrate_from_pair(slide, slide, cancel=cancel)
