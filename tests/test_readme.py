"""The README's Python example runs verbatim in a fresh interpreter and prints what the README shows (numbers to within
the round-off that differs between CPUs)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
SENTINEL = "=== end of README block ==="


def blocks(text):
    "The README's ```python blocks, each with the text of the plain ``` block right after it (None if there is none)."
    found = re.findall(r"```python\n(.*?)```\n(?:\n```\n(.*?)```\n)?", text, flags=re.S)
    return [(code, out or None) for code, out in found]


def same_output(shown, printed, rel=0.02, abs_=0.005):
    "Whether `printed` reads as `shown`: the same words, and every number within `rel` (or `abs_`) of the README's."
    if NUMBER.sub("#", shown.strip()) != NUMBER.sub("#", printed.strip()): return False
    pairs = zip(map(float, NUMBER.findall(shown)), map(float, NUMBER.findall(printed)))
    return all(abs(a - b) <= max(abs_, rel * abs(a)) for a, b in pairs)


def test_same_output_compares_words_exactly_and_numbers_loosely():
    assert same_output("objective 16.02, rho = 0.1", "objective 16.05, rho = 0.1\n")
    assert not same_output("objective 16.02", "objective 17.50")
    assert not same_output("objective 16.02", "loss 16.02")


def test_readme_python_blocks_run_verbatim_and_print_what_the_readme_shows(tmp_path):
    examples = blocks(README.read_text())
    assert examples and any(out for _, out in examples), "the README has no Python example with its output"
    script = "".join(f"{code}\nprint({SENTINEL!r}, flush=True)\n" for code, _ in examples)
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("IN_TEST", None)  # a reader's interpreter, not nbdev_test's
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    printed = run.stdout.split(SENTINEL + "\n")
    for (code, shown), out in zip(examples, printed):
        if shown is not None: assert same_output(shown, out), f"the README shows\n{shown}\nthe code printed\n{out}"
