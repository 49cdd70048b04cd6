"""Package discovery, the one thing pyproject.toml cannot say: ``methods/``, ``baselines/`` and ``annotation_app/``
keep their folders in the repository but install under the project's own names, so that the wheel adds no generic
top-level modules. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

#: repository folder -> the importable name it installs as
RENAMED = {"methods": "pdg_eval_methods", "baselines": "pdg_eval_baselines", "annotation_app": "pdg_eval_app"}


def packages() -> list[str]:
    found = find_packages(include=["pdg_eval", "pdg_eval.*"])
    for folder, name in RENAMED.items():
        found += [name + package[len(folder):] for package in find_packages(include=[folder, folder + ".*"])]
    return found


setup(packages=packages(), package_dir={name: folder for folder, name in RENAMED.items()})
