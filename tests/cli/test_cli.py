from __future__ import annotations

import subprocess
import sys

from study.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "study", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_the_subcommands():
    out = run("--help")
    assert out.returncode == 0
    for command in ("reproduce", "paper", "check", "finetune", "browser-test", "deploy", "cluster"):
        assert command in out.stdout


def test_help_is_cheap():
    """`--help` must not import TensorFlow or torch (CONTRIBUTING: heavy imports inside functions)."""
    code = "import sys; from study.cli import build_parser; build_parser(); print(sorted(m for m in ('tensorflow', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_paper_table_as_csv(capsys):
    assert main(["paper", "XI"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "label,training,validation,testing,total" and len(out) == 6


def test_bad_input_is_one_line_and_exit_2(capsys):
    assert main(["paper", "XII"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no paper table 'XII'") and len(err.strip().splitlines()) == 1
    assert main(["reproduce", "--profile", "fast"]) == 2
    assert "valid profiles" in capsys.readouterr().err


def test_one_exit_code_rule():
    from study.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_SOME_FAILED, exit_code

    assert (exit_code(0), exit_code(3)) == (EXIT_OK, EXIT_SOME_FAILED) == (0, 1) and EXIT_BAD_INPUT == 2
    out = run("cluster", "--nodes", "0")
    assert out.returncode == EXIT_BAD_INPUT and out.stderr.startswith("error: ") and not out.stdout
