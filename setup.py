"""The optional native kernels (src/deltagrad/_native.c); everything else is in pyproject.toml.

``optional=True``: where no C compiler is found the build goes on without them, and NumPy does their work.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("deltagrad._native", ["src/deltagrad/_native.c"],
                             extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno"], optional=True)])
