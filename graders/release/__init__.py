"""Build student releases and solution versions from the jupytext sources with nbgrader."""
