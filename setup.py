"""Which folders are which packages: found, never listed by hand (metadata is in pyproject.toml).

* ``space/priorpaint`` and every package below it (any folder with an ``__init__.py``);
* ``gimp_bridge/`` (the standard-library client of the backend);
* ``weights_manifest/`` as ``priorpaint.manifests``: the model manifests with all their data
  (named directions, parts recipes, encoders, the embedded model's weights and licences), read
  with ``importlib.resources`` the same way from a checkout, an editable install and a wheel;
* ``plugin/priorpaint`` as ``priorpaint.gimp_plugin`` (the GIMP 3 plug-in, installed by
  ``priorpaint gimp install``);
* the Space's own files of ``space/`` (``app.py``, its card ``README.md``, ``requirements.txt``) as
  ``priorpaint.space``, read by ``priorpaint space-export`` (the engine below ``space/priorpaint`` is
  the ``priorpaint`` package itself, not part of this one).
"""

from setuptools import find_packages, setup

MAPPED = {
    "gimp_bridge": "gimp_bridge",
    "priorpaint.manifests": "weights_manifest",
    "priorpaint.gimp_plugin": "plugin/priorpaint",
    "priorpaint.space": "space",
}
ENGINE = find_packages("space", include=["priorpaint", "priorpaint.*"])
MAPPED_SUBPACKAGES = [f"{name}.{sub}" for name, folder in MAPPED.items() if name != "priorpaint.space"
                      for sub in find_packages(folder)]
# Every file below the manifest folder is data (json, safetensors, md, txt, LICENSE, ...), whatever
# its type: a new kind of file there ships without touching this list.
ALL_FILES = ["*", "**/*"]

setup(
    packages=sorted(set(ENGINE) | set(MAPPED) | set(MAPPED_SUBPACKAGES)),
    package_dir={"": "space", **MAPPED},
    package_data={"priorpaint.manifests": ALL_FILES, "priorpaint.space": ["README.md", "requirements.txt"],
                  # the plug-in's user guide, shown by its Help button (a link to docs/usage/gimp.md)
                  "priorpaint.gimp_plugin": ["gimp.md"]},
    # (pyproject.toml turns include-package-data off: only the data named here ships, never the
    # build's own egg-info that setuptools writes into space/)
    exclude_package_data={"": ["__pycache__/*", "*.pyc"]},
)
