"""The README's first command, end to end: the demo must find exactly what it planted."""

from wijkhub.broker import free_port
from wijkhub.demo import run_demo


def test_demo_raises_exactly_the_planted_alerts(hub_settings, idp, capsys):
    # the demo's members sign in at the session's Keycloak (the local provider it finds)
    settings = hub_settings.with_(web_port=free_port(), idp_port=idp.port)
    assert run_demo(settings, households=60, keep_running=False, timeout=90)
    out = capsys.readouterr().out
    [summary] = [line for line in out.splitlines() if line.startswith("summary:")]
    assert summary.endswith("OK")
    assert "{'early_detection': 6, 'duplicate_help': 6}" in summary
    assert f"on the provider's page ({idp.issuer})" in out and "fg.demo (fg)" in out
    assert idp.running()  # a provider the demo did not start stays up
