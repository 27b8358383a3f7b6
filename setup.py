"""Maps the top-level folders contracts/, plugins/ and services/ into the crmhub namespace.

pyproject.toml holds the metadata; package discovery lives here because setuptools'
declarative `find` cannot rename a folder on its way into the distribution.
"""
from setuptools import find_packages, setup

MAPPED = ("contracts", "plugins", "services")

packages = find_packages(include=["crmhub", "crmhub.*"])
package_dir = {"crmhub": "crmhub"}
for top in MAPPED:
    for name in find_packages(include=[top, f"{top}.*"]):
        packages.append(f"crmhub.{name}")
    package_dir[f"crmhub.{top}"] = top

setup(packages=packages, package_dir=package_dir)
