"""The one fatal-error type of the course tools.

A ``CourseError`` is raised for a usage or configuration problem the user can fix; its text says
how. The CLI prints it without a traceback and exits with ``EXIT_USAGE``.
"""

EXIT_OK = 0
EXIT_UNGRADED = 1  # some submissions could not be graded (they are listed)
EXIT_USAGE = 2  # usage or configuration error


class CourseError(Exception):
    """A problem the user can fix; ``str(err)`` says what and how."""
