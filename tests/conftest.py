"""The tests' shared builders and fixtures come from one module, ``tests/builders.py``.

It is importable as ``builders`` because pyproject.toml puts ``tests`` on the
path (``pythonpath``); registering it here makes its fixtures (``plant``)
available to every test without a test module importing another.
"""

pytest_plugins = ["builders"]
