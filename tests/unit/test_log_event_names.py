"""Log events are named by constants, with the details as fields (structlog style).

Operators filter and count log lines by ``message``; an f-string event name
(``f"alert {kind}"``) turns one event into many and can carry a value into the
name that should have been a field.
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LEVELS = {"debug", "info", "warning", "error", "critical", "exception", "msg"}


def unnamed_log_calls(source: str) -> list[int]:
    """Lines of the log calls in ``source`` whose event name is not a string literal."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LEVELS
            and "log" in ast.unparse(node.func.value).lower()
        ):
            name = node.args[0] if node.args else None
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                lines.append(node.lineno)
    return sorted(lines)


def test_every_log_call_in_the_package_names_its_event_with_a_constant():
    found = [
        f"{path.relative_to(REPO)}:{line}"
        for package in ("wijkhub", "streams", "connectors")
        for path in sorted((REPO / package).rglob("*.py"))
        for line in unnamed_log_calls(path.read_text())
    ]
    assert found == []


def test_an_f_string_or_a_variable_as_event_name_is_found():
    source = "\n".join(
        [
            'log.info("alert changed", kind=kind)',
            'log.info(f"alert {kind}")',
            "self.log.warning(message)",
            'print(f"not a log call {x}")',
        ]
    )
    assert unnamed_log_calls(source) == [2, 3]
