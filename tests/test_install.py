"""``pip install .`` and ``pip install -e .`` both give a working ``twistd gatekeeper``.

Each mode installs a copy of the project into a new virtual environment and runs
``twistd gatekeeper --help`` there from a directory outside any checkout. Offline: no build
isolation, no index, no dependencies fetched. The environment sees the dependencies this
interpreter has (Twisted, setuptools, wheel, ...) through a directory of links to its
site-packages from which every file of an installed gatekeeper is left out, so the only
gatekeeper it can find is the one just installed; the test checks where it came from.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from gatekeeper import tap

ROOT = Path(__file__).resolve().parents[1]

# What a build of the project reads (setup.cfg: long_description, package_data).
PROJECT_FILES = ["pyproject.toml", "setup.py", "setup.cfg", "README.md"]
PROJECT_TREES = ["gatekeeper", "twisted"]
NOT_SOURCE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pickle", "dropin.cache")

TWISTD = "from twisted.scripts.twistd import run; run()"
WHERE = """\
import sys
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
import gatekeeper
makers = [m for m in getPlugins(IServiceMaker) if m.tapname == "gatekeeper"]
assert len(makers) == 1, makers
print(gatekeeper.__file__)
print(sys.modules["twisted.plugins.gatekeeper_plugin"].__file__)
"""


def _gatekeeper_files() -> set[Path]:
    """Every file an installed gatekeeper distribution owns (regular or editable install)."""
    owned: set[Path] = set()
    for dist in importlib.metadata.distributions():
        if (dist.metadata["Name"] or "").lower() == "gatekeeper":
            owned.update(Path(dist.locate_file(f)).resolve() for f in dist.files or ())
    return owned


def _mirror(source: Path, target: Path, owned: set[Path]) -> None:
    """Link every entry of ``source`` into ``target``, leaving out gatekeeper's files
    (a directory holding some of them is mirrored in turn: twisted/plugins)."""
    for entry in source.iterdir():
        real = entry.resolve()
        if real in owned or entry.suffix == ".pth" or entry.name == "dropin.cache":
            continue
        if entry.is_dir() and any(real in path.parents for path in owned):
            _mirror(entry, target / entry.name, owned)
        elif not os.path.lexists(target / entry.name):
            target.mkdir(parents=True, exist_ok=True)
            (target / entry.name).symlink_to(real)


@pytest.fixture(scope="module")
def dependencies(tmp_path_factory) -> Path:
    """This interpreter's site-packages without gatekeeper, as one plain directory."""
    deps = tmp_path_factory.mktemp("dependencies")
    owned = _gatekeeper_files()
    sites = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    if site.ENABLE_USER_SITE:
        sites.append(site.getusersitepackages())
    for path in dict.fromkeys(Path(s) for s in sites):
        if path.is_dir():
            _mirror(path, deps, owned)
    assert not list(deps.glob("gatekeeper*")), "an installed gatekeeper leaked into the environment"
    assert not (deps / "twisted" / "plugins" / "gatekeeper_plugin.py").exists()
    return deps


def _run(args: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", PIP_CONFIG_FILE=os.devnull, PIP_NO_INPUT="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_ROOT_USER_ACTION="ignore")
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("editable", [False, True], ids=["pip install .", "pip install -e ."])
def test_twistd_gatekeeper_works_after_installing(editable, dependencies, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, project / name)
    for name in PROJECT_TREES:
        shutil.copytree(ROOT / name, project / name, ignore=NOT_SOURCE)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        tmp_path).stdout.strip())
    (purelib / "_dependencies.pth").write_text(f"{dependencies}\n")

    install = _run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                    *(["-e"] if editable else []), project], tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    if not editable:
        shutil.rmtree(project)   # a real install needs its source no more

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([python, "-c", WHERE], elsewhere)
    assert where.returncode == 0, where.stderr
    package, plugin = (Path(line).resolve() for line in where.stdout.split())
    home = (project if editable else purelib).resolve()
    assert package == home / "gatekeeper" / "__init__.py"
    assert plugin == home / "twisted" / "plugins" / "gatekeeper_plugin.py"

    helped = _run([python, "-c", TWISTD, "gatekeeper", "--help"], elsewhere)
    assert helped.returncode == 0, helped.stdout + helped.stderr
    assert "Usage: twistd [options] gatekeeper [options]" in helped.stdout
    options = [flag[0] for flag in tap.Options.optFlags] + [p[0] for p in tap.Options.optParameters]
    assert len(options) >= 8
    for option in options:
        assert f"--{option}" in helped.stdout, (option, helped.stdout)
