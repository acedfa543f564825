"""The README's examples run as printed and print what the README says they print."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _section(title: str) -> str:
    """The README's text from the heading `## title` to the next `## ` heading."""
    text = (ROOT / "README.md").read_text()
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.slow
def test_fine_tuning_example_prints_the_accuracy_the_readme_quotes(tmp_path):
    section = _section("Fine-tune")
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    quoted = re.search(r"It prints `genus accuracy on (\d+) test barcodes: ([0-9.]+)`", section)
    for name in ("barcodemae", "checkpoints"):  # the example's relative paths, read from a scratch folder
        (tmp_path / name).symlink_to(ROOT / name)
    run = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}, timeout=900)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    printed = re.search(r"genus accuracy on (\d+) test barcodes: ([0-9.]+)", run.stdout)
    assert printed.group(1) == quoted.group(1)
    assert abs(float(printed.group(2)) - float(quoted.group(2))) <= 0.03  # seeded; the spread of other CPUs
