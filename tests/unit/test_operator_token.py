"""The CLI's own operator token has a name that cannot be mistaken for the worker's list."""

import pytest
from typer.testing import CliRunner

from wijkhub import cli
from wijkhub.settings import SettingsError, cli_operator_token

TOKEN = "t0k3n-" * 5
WORKER_LIST = f"beheerder={TOKEN}"


def test_the_new_name_or_the_option_is_taken_without_a_warning():
    assert cli_operator_token(TOKEN, {}) == (TOKEN, None)
    assert cli_operator_token(None, {}) == (None, None)


def test_the_old_name_still_works_with_a_deprecation_warning():
    token, warning = cli_operator_token(None, {"WIJKHUB_OPERATOR_TOKEN": TOKEN})
    assert token == TOKEN
    assert warning is not None and "WIJKHUB_CLI_OPERATOR_TOKEN" in warning
    assert "WIJKHUB_OPERATOR_TOKENS" in warning
    assert TOKEN not in warning  # a secret is never echoed
    # the new name wins over the old one
    assert cli_operator_token("new-" * 7, {"WIJKHUB_OPERATOR_TOKEN": TOKEN}) == ("new-" * 7, None)


def test_the_workers_list_given_to_the_cli_is_refused_with_the_reason():
    with pytest.raises(SettingsError, match="name=token list") as refused:
        cli_operator_token(WORKER_LIST, {})
    assert TOKEN not in str(refused.value)
    assert cli_operator_token("YWJj" * 8 + "==", {})[0] == "YWJj" * 8 + "=="  # base64 padding


def _show(env: dict[str, str]):
    base = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "WIJKHUB_WEB_PORT": "9"}
    return CliRunner().invoke(
        cli.app, ["household", "show", "H-1", "--purpose", "case 1"], env={**base, **env}
    )


def test_household_show_names_the_variable_and_warns_on_the_old_one():
    missing = _show({"WIJKHUB_OPERATOR_TOKENS": WORKER_LIST})
    assert missing.exit_code == 2
    assert "WIJKHUB_CLI_OPERATOR_TOKEN" in missing.output and TOKEN not in missing.output
    old = _show({"WIJKHUB_OPERATOR_TOKEN": TOKEN})  # no worker at port 9: fails after the warning
    assert old.exit_code == 2
    assert old.output.startswith("warning: WIJKHUB_OPERATOR_TOKEN is deprecated")
    assert "no worker answers" in old.output
    listed = _show({"WIJKHUB_CLI_OPERATOR_TOKEN": WORKER_LIST})
    assert listed.exit_code == 2 and "name=token list" in listed.output
