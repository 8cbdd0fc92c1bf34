"""The rights commands fail with one clear line (exit 2), never a traceback, and never with
the BSN in what they print."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from wijkhub import cli

NOWHERE = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "WIJKHUB_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
           "WIJKHUB_PSEUDONYM_KEY": "rights-test-pseudonym-key-0123456789",
           "WIJKHUB_ID_KEY": "rights-test-id-key-0123456789abcdefgh"}  # fmt: skip


def invoke(*args: str, stdin: str = ""):
    return CliRunner().invoke(cli.app, list(args), env=NOWHERE, input=stdin)


def test_erase_wants_one_way_to_name_the_person_before_asking_anything():
    both = invoke("erase", "--case", "C1", "--role", "fg", "--bsn", "--person-ref", "P1-x")
    assert both.exit_code == 2 and "one of the two" in both.output and "BSN:" not in both.output


def test_an_invalid_bsn_is_refused_without_repeating_it():
    refused = invoke("erase", "--case", "C1", "--role", "fg", "--bsn", stdin="123456789\n")
    assert refused.exit_code == 2 and "elfproef" in refused.output
    assert "123456789" not in refused.output.replace("BSN: ", "")


@pytest.mark.slow  # kafka-python gives up bootstrapping after its own timeout (about 30 s)
def test_no_broker_is_one_line_not_a_traceback():
    done = subprocess.run([sys.executable, "-m", "wijkhub", "subject-access", "--case", "C1",
                           "--person-ref", "P1-abc"], env={**os.environ, **NOWHERE},
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "Traceback" not in done.stderr
    assert "no Kafka broker answers" in last
