"""benchmarks/gpu.sh's dry run on the CPU: the script runs end to end with tiny sizes and
writes one table row per backbone and precision, each with every column."""

import json
import os
import subprocess
from pathlib import Path

from benchmarks.gpu import COLUMNS, SETUPS

ROOT = Path(__file__).resolve().parents[2]


def test_the_cpu_dry_run_writes_a_full_table(tmp_path):
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "CLEARN_BENCH_RESULTS": str(tmp_path)}
    done = subprocess.run(
        [str(ROOT / "benchmarks" / "gpu.sh"), "--device", "cpu"], cwd=ROOT, env=environment,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((tmp_path / "gpu-quick.json").read_text())["rows"]
    assert [(r["backbone"], r["precision"]) for r in rows] == [
        (name, mode) for name in SETUPS for mode in ("fp32", "bf16")
    ]
    assert all(set(row) == set(COLUMNS) for row in rows)
    assert all(row["keeps_frozen_bit_for_bit"] for row in rows if row["precision"] == "fp32")
    assert all(row[k] > 0 for row in rows for k in COLUMNS if k.endswith(("_s", "_bare", "_step")))
    page = (tmp_path / "gpu-quick.md").read_text()
    assert page.count("\n| ") == 1 + len(rows)  # header and rows ("|---" follows the header)
