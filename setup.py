"""Build the pinncore._core extension (pybind11).

Environment variables:
  PINNCORE_PORTABLE=1   build without -march=native (a wheel that runs on any x86-64)
  PINNCORE_SANITIZE=1   build with AddressSanitizer + UndefinedBehaviorSanitizer (tests only)
"""
import glob
import os

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

SOURCES = sorted(["csrc/bindings.cpp"])
HEADERS = sorted(glob.glob("csrc/*.hpp"))  # rebuild when a kernel header changes

compile_args = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-std=c++17", "-Wno-psabi"]
link_args = ["-pthread"]
if os.environ.get("PINNCORE_PORTABLE", "0") != "1":
    compile_args.append("-march=native")
if os.environ.get("PINNCORE_SANITIZE", "0") == "1":
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    compile_args = [a for a in compile_args if a != "-O3"] + ["-O1", "-g"] + san
    link_args += san

ext = Pybind11Extension(
    "pinncore._core",
    SOURCES,
    include_dirs=["csrc"],
    depends=HEADERS,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    cxx_std=17,
)

setup(ext_modules=[ext], cmdclass={"build_ext": build_ext})
