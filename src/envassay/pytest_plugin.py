"""The plugin's entry-point name (pyproject `pytest11`, `-p envassay.pytest_plugin`): the
plugin itself is envassay.run.plugin, and this name is that same module object."""

import sys

from envassay.run import plugin

sys.modules[__name__] = plugin
