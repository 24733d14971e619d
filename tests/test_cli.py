"""The scratchnn command."""

import re

import pytest

from scratchnn.cli import main


def test_train_xor_runs_the_seed_recipe(capsys):
    assert main(["train", "xor"]) == 0
    out = capsys.readouterr().out.splitlines()
    losses = [float(m.group(1)) for line in out if (m := re.match(r"epoch +\d+ +loss ([\d.]+)", line))]
    assert len(losses) == 10 and losses[-1] < losses[0] and losses[-1] < 0.05
    predictions = [line.split() for line in out[-4:]]
    assert [row[:2] for row in predictions] == [["0", "0"], ["0", "1"], ["1", "0"], ["1", "1"]]
    p = [float(row[2]) for row in predictions]
    assert p[0] < 0.1 and p[1] > 0.9 and p[2] > 0.9 and p[3] < 0.1


def test_train_xor_options(capsys):
    assert main(["train", "xor", "--activation", "tanh", "--optimizer", "adam", "--lr", "0.05",
                 "--epochs", "2000", "--hidden", "8", "--seed", "1", "--print-every", "500"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "2-8-1, tanh" in out[0] and "Adam(lr=0.05)" in out[0]
    assert sum(line.startswith("epoch") for line in out) == 4
    p = [float(line.split()[2]) for line in out[-4:]]
    assert p[0] < 0.5 < p[1] and p[2] > 0.5 > p[3]


def test_bad_option_is_one_clear_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "xor", "--epochs", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --epochs: must be a positive integer, got 0" in err
    assert "Traceback" not in err
