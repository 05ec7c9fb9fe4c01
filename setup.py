"""Packaging: metadata lives in setup.cfg.

The package list is here because ``twisted/plugins`` must ship without an
``__init__.py`` (it extends Twisted's own plugin package), which
``find_packages`` cannot see.
"""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["gatekeeper", "gatekeeper.*"]) + ["twisted.plugins"])
