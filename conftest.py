"""Root conftest: its presence puts the repository root on ``sys.path`` (pytest's default
"prepend" import mode), so the tests import their shared scaffolding as ``tests.support``
whether pytest is started as ``pytest tests`` or ``python -m pytest``."""
