"""The compiled kernels: one C extension per layer, beside the Python modules that call them.

Metadata lives in pyproject.toml; this file only declares the extensions (setuptools has no stable
pyproject form for them).  They use nothing but the CPython API and the buffer protocol: no numpy headers
at build time.
"""

from glob import glob

from setuptools import Extension, setup

COMPILE_ARGS = ["-std=c11", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"]


def extension(module: str) -> Extension:
    """``gwcheck.capture._walk`` from ``gwcheck/capture/_walk.c``, rebuilt when any header beside it changes."""
    folder, name = module.rsplit(".", 1)
    folder = folder.replace(".", "/")
    return Extension(
        module,
        sources=[f"{folder}/{name}.c"],
        depends=sorted(glob(f"{folder}/*.h") + glob("gwcheck/*.h")),
        include_dirs=["gwcheck"],
        extra_compile_args=COMPILE_ARGS,
    )


setup(ext_modules=[extension(m) for m in ("gwcheck.capture._walk", "gwcheck.decode._decode", "gwcheck.tables._kernels")])
