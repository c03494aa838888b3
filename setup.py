"""Maps the repository's top-level folders into one import package, ``formloom``.

``platform/`` and ``engines/`` must not be regular packages at the repository root: a
folder named ``platform`` with an ``__init__.py`` shadows the standard library's
``platform`` module whenever the root is on ``sys.path``. So ``formloom`` itself is a
namespace mapped onto the repository root and each top-level folder becomes
``formloom.<folder>``; sub-folders are ordinary packages. The list is computed here because
pyproject.toml cannot express a mapping of discovered folders.
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
TOP_LEVEL = ("platform", "engines", "builtin_apps", "migrations", "ui")
DATA = ["*.json", "*.ini", "*.mako", "*.html", "*.js", "*.css", "*.svg", "*.md", "*.txt"]


def _packages() -> list[str]:
    found = ["formloom"]
    for top in TOP_LEVEL:
        base = ROOT / top
        if not base.is_dir():
            continue
        for folder in [base, *sorted(p for p in base.rglob("*") if p.is_dir())]:
            if "__pycache__" in folder.parts or folder.name.endswith(".egg-info"):
                continue
            found.append("formloom." + ".".join(folder.relative_to(ROOT).parts))
    return found


setup(
    packages=_packages(),
    package_dir={"formloom": "."},
    package_data={name: DATA for name in _packages()},
    include_package_data=False,
)
