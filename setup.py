"""Packaging: metadata lives in setup.cfg.

The package list is here because ``twisted/plugins`` must ship without an
``__init__.py`` (it extends Twisted's own plugin package), which
``find_packages`` cannot see.

``package_dir`` names the project root explicitly, for ``pip install -e .``:
with it, setuptools' editable install puts the checkout on ``sys.path`` (a
plain ``.pth`` line) instead of installing an import hook that maps only
``gatekeeper`` and ``twisted.plugins``. Twisted looks for plugins in the
``twisted/plugins`` directory of each ``sys.path`` entry, so it sees no import
hook: without this line ``twistd gatekeeper`` outside the checkout answers
"Unknown command: gatekeeper". tests/test_install.py checks both install modes.
"""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["gatekeeper", "gatekeeper.*"]) + ["twisted.plugins"],
      package_dir={"": "."})
