"""The grading plugin for pytest; see ``graders.plugin.plugin`` for markers and fixtures."""
from graders.plugin.i18n import say
from graders.plugin.outcomes import PartialCredit

__all__ = ["PartialCredit", "say"]
