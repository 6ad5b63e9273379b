"""Build settings beyond pyproject.toml: the optional C kernel ``station._raw10`` (RAW10 unpack/pack).

``optional=True``: on a machine without a C compiler the install still succeeds and
``station.raw10`` uses its numpy path (the same bits, slower).
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
        )
    ]
)
