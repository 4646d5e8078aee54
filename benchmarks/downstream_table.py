"""The table of docs/benchmarks.md section 11b from the JSON lines of ``downstream_without_optics.py``.

    cd benchmarks
    python downstream_table.py results/downstream_without_optics/downstream_current_code.jsonl \
        results/downstream_without_optics/downstream_current_code_given.jsonl

One row per case and optics setting (the latest row of each wins): the
calibration's PSF figures and time, the default flow and the CG U-Net from
scratch with their step counts and their gap to the same networks on the true
field, the default flow's gain on the blurred input, and the best classical
method with the calibrated PSFs.
"""

from __future__ import annotations

import argparse
import json

SETTINGS = ("optics unknown", "optics given")


def rows(paths: list[str]) -> dict:
    """``{(case, setting): (row, result)}``, later files and lines replacing earlier ones."""
    found = {}
    for path in paths:
        for line in open(path):
            if not line.strip():
                continue
            row = json.loads(line)
            for setting in SETTINGS:
                if setting in row:
                    found[(row["case"], setting)] = (row, row[setting])
    return found


def table(found: dict) -> str:
    lines = ["| lens, slide | optics | calibration: s, corr median / corners, displacement median / max px "
             "| default flow dB (steps), gap | scratch dB (steps), gap | gain on input | best classical dB |",
             "|---|---|---|---|---|---|---|"]
    for (case, setting), (row, r) in sorted(found.items(), key=lambda kv: (kv[0][0], kv[0][1] != "optics unknown")):
        library, lens, layout = case.split(":")
        flow, scratch, gap = r["default_flow"], r["cgunet_scratch"], r["gap_to_true_field_db"]
        best = max(r.get("classical", {}).items(), key=lambda kv: kv[1]["psnr"], default=None)
        classical = f"{best[1]['psnr']:.2f} ({best[0].split(' (')[0]})" if best else "-"
        lines.append(
            f"| {lens} ({library}), {layout} | {setting.split()[1]} | {r['calibration_s']:.0f} s, "
            f"{r['psf_corr_median']:.4f} / {r['psf_corr_corners']:.4f}, {r['displacement_px_median']:.2f} / "
            f"{r['displacement_px_max']:.2f} | {flow['psnr']:.2f} ({flow['steps']}), **{gap['default_flow']:+.2f}** "
            f"| {scratch['psnr']:.2f} ({scratch['steps']}), **{gap['cgunet_scratch']:+.2f}** "
            f"| {r['default_flow_gain_db']:+.2f} | {classical} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+")
    print(table(rows(p.parse_args(argv).paths)))


if __name__ == "__main__":
    main()
