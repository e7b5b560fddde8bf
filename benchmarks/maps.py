"""Map size and load time in a real browser, for written plans.

    python benchmarks/maps.py PLAN_DIR [PLAN_DIR ...] [--no-buildings-layer]

For every plan folder (as ``gridmap delineate --out`` writes it), redraws
``coverage.html`` and ``workload.html`` with ``gridmap map``, then opens each in
headless Chromium (every host name unresolvable, as on an offline intranet) and
prints the file size, the time to the page's ``load`` event and to the grids
being on screen (Leaflet's ``load`` of the last layer, measured in the page),
and the wall time of the whole browser run (start-up included).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = (
    "<script>window.addEventListener('load', function () {"
    " requestAnimationFrame(function () { requestAnimationFrame(function () {"
    " console.log('gridmap-drawn-ms ' + performance.now().toFixed(0)); }); });"
    " console.log('gridmap-load-ms ' + performance.now().toFixed(0)); });</script>"
)


def measure(page: Path, chromium: str) -> dict[str, float]:
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>", 1),
                     encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        proc = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", f"--user-data-dir={tmp}",
             "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
             "--window-size=1200,900", f"--screenshot={tmp}/shot.png", probe.as_uri()],
            capture_output=True, text=True, timeout=300, check=False,
        )
        wall = time.perf_counter() - t
    probe.unlink()
    found = dict(re.findall(r"gridmap-(load|drawn)-ms (\d+)", proc.stderr))
    errors = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln and "rror" in ln]
    return {"mb": page.stat().st_size / 1e6, "load_ms": float(found.get("load", "nan")),
            "drawn_ms": float(found.get("drawn", "nan")), "wall_s": wall,
            "errors": len(errors)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plans", nargs="+")
    ap.add_argument("--no-buildings-layer", action="store_true")
    a = ap.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium is not installed (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    print(f"{'plan':<28} {'map':<9} {'grids':>6} {'buildings':>9} {'MB':>6} "
          f"{'load ms':>8} {'drawn ms':>9} {'wall s':>7} errors")
    for p in a.plans:
        d = Path(p)
        cmd = ["gridmap", "map", str(d), "--quiet"]
        if a.no_buildings_layer:
            cmd.append("--no-buildings-layer")
        subprocess.run(cmd, check=True)
        import pyogrio

        n_grids = pyogrio.read_info(d / "plan.gpkg", layer="grids")["features"]
        n_b = pyogrio.read_info(d / "plan.gpkg", layer="buildings")["features"]
        for name in ("coverage", "workload"):
            r = measure(d / f"{name}.html", chromium)
            print(f"{d.name:<28} {name:<9} {n_grids:>6} {n_b:>9} {r['mb']:>6.1f} "
                  f"{r['load_ms']:>8.0f} {r['drawn_ms']:>9.0f} {r['wall_s']:>7.1f} "
                  f"{r['errors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
