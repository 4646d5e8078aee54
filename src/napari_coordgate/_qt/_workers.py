"""The dock widgets' background jobs: napari ``thread_worker`` generators that call the core.

Each runs off the GUI thread and yields progress or returns a result for its
widget to show; none touches a layer or a Qt object. Jobs that run a model
hold :data:`._threads.MODEL_LOCK` and leave a core for the GUI.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

import numpy as np
from napari.qt.threading import thread_worker

from ..data.training_set import make_training_set
from ..files.batch import FileOptions, iter_deblur_files
from ..gate_map import gate_maps, local_response
from ..inference.deblur import iter_deblur
from ..inference.image_change import describe_change
from ..inference.output_dtype import OutputCast
from ..models.unet import UNet
from ..psf.beads.calibrate import calibrate_from_beads
from ..psf.optics.simulate import simulate_lens
from ..psf.pair.calibrate import calibrate_from_pair
from ..training import train
from ._threads import MODEL_LOCK, leave_a_core_for_the_gui, until_cancelled

__all__ = ["calibration_job", "deblur_job", "deblur_layers_job", "deblur_folder_job", "training_job", "export_job",
           "gate_map_job", "kernel_job", "LayerDone"]


@dataclass(frozen=True)
class LayerDone:
    """One layer of :func:`deblur_layers_job` finished (``result`` None if it failed, with ``message``)."""

    name: str
    result: object
    message: str


@thread_worker(ignore_errors=True)
def calibration_job(kind: str, images: list, options: dict, report=None, cancel: threading.Event | None = None):
    """Calibrate in a worker; returns ``(psf_field, montage)``.

    ``report`` gets each progress message as it comes (a
    :meth:`MessageRelay.send`); setting ``cancel`` stops a bead or pair
    calibration within about a second, raising
    :class:`~napari_coordgate.cancellation.Cancelled`. Everything the result
    layers and reports need is computed here (the field's widths are cached
    on it), so the GUI thread only assigns.
    """
    if kind == "beads":
        field = calibrate_from_beads(images[0], report=report, cancel=cancel, **options)
    elif kind == "pair":
        field = calibrate_from_pair(images[0], images[1], report=report, cancel=cancel, **options)
    else:
        field = simulate_lens(**options)
    field.summary()
    return field, field.montage()


@thread_worker(ignore_errors=True)
def deblur_job(image, model, offset, device, cancel: threading.Event, report: bool = False, output_dtype=None):
    """Deblur ``image`` in a worker: yields ``DeblurProgress``; returns
    ``(array, ImageChange or None, clipping report)``, or None once ``cancel`` is set.

    With ``report``, how the image changed (:func:`describe_change`) is
    measured here too (on the float32 result), so the GUI thread only shows it.
    The result is then cast to ``output_dtype`` (see :class:`OutputCast`).
    """
    with MODEL_LOCK, leave_a_core_for_the_gui():
        result = yield from until_cancelled(iter_deblur(image, model, offset=offset, device=device), cancel)
    if result is None:
        return None
    change = describe_change(np.asarray(image), result) if report else None
    cast = OutputCast.for_input(output_dtype, np.dtype(image.dtype))
    return cast(result), change, (cast.report() if cast.dtype.kind != "f" else "")


@thread_worker(ignore_errors=True)
def deblur_layers_job(items, model, offset, device, output_dtype, cancel: threading.Event):
    """Deblur each ``(name, data)`` in turn, yielding tile progress and a
    :class:`LayerDone` per layer; a layer that fails is reported and the rest go on."""
    with MODEL_LOCK, leave_a_core_for_the_gui():
        for name, data in items:
            try:
                result = yield from until_cancelled(iter_deblur(data, model, offset=offset, device=device), cancel)
            except Exception as err:  # e.g. a layer that does not fit the field: report it, go on
                yield LayerDone(name, None, " ".join(str(err).split()) or type(err).__name__)
                continue
            if result is None:
                return None
            cast = OutputCast.for_input(output_dtype, np.dtype(data.dtype))
            yield LayerDone(name, cast(result), cast.report() if cast.dtype.kind != "f" else "")
    return True


@thread_worker(ignore_errors=True)
def deblur_folder_job(jobs, model, options: FileOptions, cancel: threading.Event):
    """Deblur image files into their outputs (see :func:`iter_deblur_files`);
    returns the failures, or None if cancelled (no partial file is left)."""
    with MODEL_LOCK, leave_a_core_for_the_gui():
        return (yield from until_cancelled(iter_deblur_files(jobs, model, options), cancel))


@thread_worker(ignore_errors=True)
def training_job(model, copy_model: bool, psf_field, training_set, data_options: dict, train_options: dict,
                 cancel: threading.Event):
    """Train ``model`` (or a copy of it) in a worker; make the training set first unless given.

    ``model`` is a network, or a function without arguments that makes one
    (loading the base model takes a few hundred milliseconds: not on the GUI
    thread). ``training_set`` is used only if it suits the model (its
    normalisation and alignment); ``data_options`` make a new one, with the
    model's percentiles.

    Yields, in order: the model being trained, status strings, the new
    TrainingSet, then TrainingProgress records. Returns the TrainingResult,
    or None when stopped (the model then holds its best weights).
    """
    with leave_a_core_for_the_gui():
        if not isinstance(model, UNet):
            model = model()
        elif copy_model:  # the current model: other widgets may be running it
            with MODEL_LOCK:
                model = copy.deepcopy(model)
        yield model
        if training_set is not None and (tuple(training_set.percentiles) != tuple(model.percentiles)
                                         or training_set.alignment % model.alignment):
            training_set = None
        if training_set is None:
            yield "Making the training set…"
            training_set = make_training_set(psf_field, **{**data_options, "percentiles": model.percentiles})
            yield training_set
        return (yield from until_cancelled(train(model, training_set, **train_options), cancel))


@thread_worker(ignore_errors=True)
def export_job(model, path: str, options: dict):
    """Write a BioImage.IO package in a worker (tracing and checking take seconds); returns its path."""
    from ..export import export_bioimageio

    with MODEL_LOCK:
        model = copy.deepcopy(model)
    return export_bioimageio(model, path, overwrite=True, **options)


@thread_worker(ignore_errors=True)
def gate_map_job(model, block: str, offset, shape, stride: int = 1):
    """The gate maps of one block, ``(n_gates, h, w)``, computed in a worker."""
    with MODEL_LOCK, leave_a_core_for_the_gui():
        return gate_maps(model, block, offset=offset, shape=shape, stride=stride)


@thread_worker(ignore_errors=True)
def kernel_job(model, psf_field, y: int, x: int, size: int, offset):
    """``(psf or None, network kernel)`` at image pixel ``(y, x)``, in a worker."""
    with MODEL_LOCK, leave_a_core_for_the_gui():
        kernel = local_response(model, y, x, size=size, offset=offset)
    fy, fx = y + offset[0], x + offset[1]
    same_field = psf_field is not None and tuple(psf_field.field_shape) == tuple(model.field_shape or ())
    return (psf_field.psf_at(fy, fx) if same_field else None), kernel
