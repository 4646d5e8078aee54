"""calibration_report: the sentences that describe a calibrated PSF field, for the Calibration dock and the CLI."""

from __future__ import annotations

from .beads.centroid_check import describe_centroid_check
from .psf_field import PSFField

__all__ = ["calibration_report", "ABERRATION_SHOWN"]

#: Aberrations smaller than this (waves) are left out of the report: they change the PSF by well under 1 %.
ABERRATION_SHOWN = 0.01


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * float(value):.0f}%"


def calibration_report(field: PSFField) -> list[str]:
    """One sentence per line about a calibration: the model and why, the beads used and rejected, the
    held-out beads, the centroid check, the aberrations, the explained fraction (pairs) and the widths.

    Warnings are not included (they are in ``field.metadata["warnings"]``, for the caller to show as such).

    Parameters
    ----------
    field : PSFField
        A calibrated (or simulated) field.

    Returns
    -------
    list of str
    """
    m = field.metadata
    lines = []
    if m.get("method"):
        reason = m.get("method_reason")
        lines.append(f"Model: {m['method']}" + (f"; {' '.join(str(reason).split()).rstrip('.')}." if reason else "."))
    if field.kind == "beads" and "n_used" in m:
        rejected = {reason: n for reason, n in (m.get("rejected") or {}).items() if n}
        text = f"{m['n_used']} beads used" + (f" of {m['n_detected']} detected" if "n_detected" in m else "")
        lines.append(text + ("; rejected: " + ", ".join(f"{n} {reason}" for reason, n in rejected.items())
                             if rejected else "") + ".")
    held = m.get("held_out")
    if held:
        regions = ", ".join(f"{region} {_percent(value)}" for region, value in (held.get("by_region") or {}).items()
                            if value is not None)
        fraction = held.get("unexplained_fraction")
        lines.append(f"Held-out beads ({held.get('n_beads', '?')}): "
                     + ("not scored" if fraction is None else f"{_percent(fraction)} of their light unexplained")
                     + (f" ({regions})." if regions else "."))
    centroids = describe_centroid_check(m.get("centroid_check"), tuple(field.field_shape))
    if centroids:
        lines.append(centroids)
    for label, values in (m.get("aberrations") or {}).items():
        terms = ", ".join(f"{name.replace('_', ' ')} {value:+.2f}" for name, value in values.items()
                          if abs(value) >= ABERRATION_SHOWN)
        lines.append(f"Aberrations {label.replace('_', ' ')} (waves): {terms or f'none above {ABERRATION_SHOWN:g}'}.")
    if m.get("explained_fraction") is not None:
        lines.append(f"The PSF field explains {_percent(m['explained_fraction'])} of the blurred image.")
    s = field.summary()
    corners = ", ".join(f"{name.replace('_', ' ')} {value:.2f}" for name, value in s["fwhm_corners_px"].items())
    lines.append(f"FWHM: {s['fwhm_centre_px']:.2f} px at the centre; corners {corners} px.")
    return lines
