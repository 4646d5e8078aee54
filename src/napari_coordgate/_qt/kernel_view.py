"""Showing local kernels: a side-by-side canvas, and a colormap for kernels drawn over the data."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from napari.utils.colormaps import Colormap

from .threaded_canvas import ThreadedCanvas

__all__ = ["KernelView", "SIGNED_KERNEL", "kernel_limit"]

_TEXT = "#d0d3d8"
_BACKGROUND = "#262930"

#: Blue for negative, red for positive, and transparent at 0 (the middle of
#: symmetric contrast limits), so that a kernel drawn over the data hides
#: only where it acts.
SIGNED_KERNEL = Colormap(
    colors=[[0.15, 0.45, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0], [1.0, 0.25, 0.15, 1.0]],
    controls=[0.0, 0.5, 1.0],
    name="coordgate signed kernel",
)


def kernel_limit(kernel: np.ndarray) -> float:
    """A symmetric colour limit for a signed kernel.

    A deblurring network's response is a strong centre (the point passes
    through) with weak side lobes (the sharpening); scaling to the maximum
    would hide the lobes, so the 99th percentile of ``|kernel|`` is used.
    """
    magnitude = np.abs(kernel)
    limit = float(np.percentile(magnitude, 99))
    return limit if limit > 0 else float(magnitude.max()) or 1.0


class KernelView(ThreadedCanvas):
    """Two panels at the same pixel scale: the PSF field's kernel at a point
    (what the lens does) and the network's local response there (what the
    network does about it). The panels are built and rendered in a worker
    thread (:class:`~.threaded_canvas.ThreadedCanvas`)."""

    def __init__(self) -> None:
        figure = Figure(figsize=(4.0, 2.4), dpi=80, facecolor=_BACKGROUND)
        figure.subplots_adjust(left=0.03, right=0.97, top=0.80, bottom=0.12, wspace=0.25)
        self._shown: tuple = (None, None, "")
        super().__init__(figure)
        self.setMinimumHeight(170)
        self.psf_axes, self.kernel_axes = figure.subplots(1, 2)
        self._colorbars = []
        self.show(None, None, "")

    def show(self, psf: np.ndarray | None, kernel: np.ndarray | None, where: str) -> None:
        """Draw both kernels (either may be None: "not available")."""
        self._shown = (psf, kernel, where)
        self.draw()

    def payload(self) -> tuple:
        return self._shown

    def update_figure(self, payload: tuple) -> None:
        psf, kernel, where = payload
        radius = max([k.shape[0] // 2 for k in (psf, kernel) if k is not None], default=0)
        for bar in self._colorbars:
            bar.remove()
        self._colorbars = []
        for axes, image, title in (
            (self.psf_axes, psf, "PSF (calibration)"),
            (self.kernel_axes, kernel, "network response"),
        ):
            axes.clear()
            axes.set_axis_off()
            axes.set_title(f"{title}\n{where}" if where else title, color=_TEXT, fontsize=10)
            if image is None:
                axes.text(0.5, 0.5, "n/a", color=_TEXT, ha="center", va="center", transform=axes.transAxes)
                continue
            r = image.shape[0] // 2
            extent = (-r - 0.5, r + 0.5, r + 0.5, -r - 0.5)
            if image is kernel:  # signed: blue below 0, red above
                limit = kernel_limit(image)
                shown = axes.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest",
                                    extent=extent)
            else:
                shown = axes.imshow(image, cmap="magma", interpolation="nearest", extent=extent)
            bar = self.figure.colorbar(shown, ax=axes, orientation="horizontal", fraction=0.06, pad=0.04)
            bar.ax.tick_params(colors=_TEXT, labelsize=7)
            bar.ax.xaxis.get_offset_text().set_color(_TEXT)
            bar.locator = MaxNLocator(3)
            bar.update_ticks()
            self._colorbars.append(bar)
            axes.set_xlim(-radius - 0.5, radius + 0.5)
            axes.set_ylim(radius + 0.5, -radius - 0.5)
