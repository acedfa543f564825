"""The README's examples run as printed and print what the README says they print."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import barcodemae

ROOT = Path(__file__).resolve().parents[1]


def _section(title: str, document: str = "README.md") -> str:
    """The document's text from the heading `## title` to the next `## ` heading."""
    text = (ROOT / document).read_text()
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(info string, content) of each ``` fenced block of `text`, in order ("bash", "python", "" for output)."""
    blocks, info, lines = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if info is None:
                info, lines = line[3:].strip(), []
            else:
                blocks.append((info, "\n".join(lines)))
                info = None
        elif info is not None:
            lines.append(line)
    return blocks


def _quoted_outputs(text: str) -> list[tuple[tuple[str, ...], str]]:
    """(command, line) for each line of an output block of `text` that ends with the `--output` of a `barcodemae`
    command of a bash block of `text` (`...; written: calls.tsv`, `...: embeddings.parquet`)."""
    commands = []
    for info, block in _fenced_blocks(text):
        if info == "bash":
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words[:1] == ["barcodemae"] and "--output" in words:
                    commands.append(tuple(words))
    pairs = []
    for info, block in _fenced_blocks(text):
        for line in block.splitlines() if info == "" else []:
            matching = [words for words in commands if line.endswith(": " + words[words.index("--output") + 1])]
            assert len(matching) <= 1, f"{line!r}: quoted after several commands writing the same file"
            pairs += [(matching[0], line)] if matching else []
    return pairs


def _without_timings(line: str) -> str:
    return re.sub(r"\d+(\.\d+)? (s\b|sequences/s)", r"# \2", line)


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


@pytest.mark.slow
def test_commands_print_the_lines_the_readme_and_the_command_line_page_quote(tmp_path):
    """The README's `identify` and `cluster` commands (and every command whose printed line docs/command_line.md or
    docs/index.md quotes), run as printed from a scratch folder, print the quoted line (timings aside)."""
    readme = _quoted_outputs(_section("Identify") + _section("Cluster"))
    assert {words[1] for words, _ in readme} >= {"identify", "cluster"}, "the README no longer quotes their output"
    quoted: dict[tuple[str, ...], list[str]] = {}
    for words, line in readme + _quoted_outputs((ROOT / "docs" / "command_line.md").read_text()) + _quoted_outputs(
        (ROOT / "docs" / "index.md").read_text()
    ):
        quoted.setdefault(words, []).append(line)
    (tmp_path / "barcodemae").symlink_to(ROOT / "barcodemae")  # the commands' relative paths (the bundled fixture)
    for words, lines in quoted.items():
        run = barcodemae(*words[1:], cwd=tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]
        printed = _without_timings(run.stdout.strip().splitlines()[-1])
        for line in lines:
            assert printed == _without_timings(line), f"{shlex.join(words)}\nprinted: {printed}\nquoted:  {line}"
