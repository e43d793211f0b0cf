"""Feedback pages per student and the class dashboard, rendered with jinja2."""
