"""``python -m graders ...`` is ``course ...`` (for a kernel whose venv is not on PATH)."""
from graders.cli.main import entry

entry()
