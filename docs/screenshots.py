"""Regenerate the screenshots in docs/_static from the bundled demo.

    python docs/screenshots.py [PLAN_DIR]

Runs the README's demo (unless PLAN_DIR holds a plan already), then opens
coverage.html and workload.html in headless Chromium, with every host name
unresolvable, and saves what it draws.  For the diff map, it re-partitions the
demo plan after the "new estate" scenario of
``benchmarks/repartition_scenarios.py`` (1,500 households on empty land).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "out" / "shanghai"
    if not (out / "plan.gpkg").exists():
        data = str(ROOT / "data" / "shanghai_bund.gpkg")
        subprocess.run(["gridmap", "delineate", "--buildings", data, "--streets", data,
                        "--target", "300", "--tolerance", "0.1", "--by", "households",
                        "--out", str(out), "--quiet"], check=True)
    subprocess.run(["gridmap", "map", str(out), "--quiet"], check=True)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from repartition_scenarios import scenarios

    import gridmap

    estate = dict(scenarios(gridmap.read_plan(out)))["new estate"]
    later = out.with_name(out.name + "-estate")
    later.mkdir(parents=True, exist_ok=True)
    estate.to_file(later / "buildings.gpkg", layer="buildings")
    subprocess.run(["gridmap", "repartition", "--plan", str(out / "plan.gpkg"), "--buildings",
                    str(later / "buildings.gpkg"), "--out", str(later), "--quiet"], check=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium is not installed (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    for name, folder in (("coverage", out), ("workload", out), ("diff", later)):
        shot = ROOT / "docs" / "_static" / f"{name}.png"
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", f"--user-data-dir={profile}",
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1100,820",
                 "--virtual-time-budget=4000", f"--screenshot={shot}",
                 (folder / f"{name}.html").as_uri()],
                check=True, capture_output=True, timeout=120,
            )
        print(f"wrote {shot} ({shot.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
