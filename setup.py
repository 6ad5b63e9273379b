"""Build settings beyond pyproject.toml: the optional C kernels ``station._raw10`` (RAW10 unpack/pack) and
``calibration._sfrk`` (e-SFR per-edge kernels).

``optional=True``: on a machine without a C compiler the install still succeeds and
``station.raw10`` / ``calibration.sfr`` use their numpy paths (the same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "station._raw10",
            sources=["station/_raw10.c"],
            extra_compile_args=["-O3", "-std=c11"],
            extra_link_args=["-pthread"],
            optional=True,
        ),
        Extension(
            "calibration._sfrk",
            sources=[f"calibration/_sfrk_c/{name}.c"
                     for name in ("module", "sfrk_edge", "sfrk_fit", "sfrk_esf", "sfrk_pipe")],
            depends=["calibration/_sfrk_c/sfrk.h"],
            extra_compile_args=["-O3", "-std=c11"],
            optional=True,
        ),
    ]
)
