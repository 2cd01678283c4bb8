"""swift-nearest's C core as a shared library for ctypes, built from the checkout on each use."""

import ctypes
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.dirname(HERE)
REPOSITORY = os.path.dirname(BENCHMARKS)
METRICS = {"l2": 0, "ip": 1, "cosine": 2}  # nn_metric, for the shim's `metric` arguments


def load_shim():
    """Compiles CSources/CNearest and nearest_shim.c with a SwiftPM release build's flags (-O2, no
    -march: the kernels pick AVX2 or AVX-512 at run time) into Benchmarks/.cache/libnearest_shim.so,
    and declares its functions."""
    sources_dir = os.path.join(REPOSITORY, "CSources", "CNearest")
    sources = sorted(os.path.join(sources_dir, f) for f in os.listdir(sources_dir) if f.endswith(".c"))
    sources.append(os.path.join(HERE, "nearest_shim.c"))
    out_dir = os.path.join(BENCHMARKS, ".cache")
    os.makedirs(out_dir, exist_ok=True)
    library = os.path.join(out_dir, "libnearest_shim.so")
    blas = subprocess.run(["pkg-config", "--cflags", "--libs", "openblas"], capture_output=True, text=True,
                          check=True).stdout.split()
    command = [os.environ.get("CC", "clang"), "-std=gnu11", "-O2", "-shared", "-fPIC", "-D_GNU_SOURCE",
               "-I", os.path.join(sources_dir, "include"), "-I", sources_dir, *sources, *blas,
               "-lpthread", "-lm", "-o", library]
    subprocess.run(command, check=True)
    shim = ctypes.CDLL(library)
    pointer, size, integer = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
    declare(shim.shim_build, pointer, [pointer, size, size, integer, size, size, size])
    declare(shim.shim_search, ctypes.c_uint64, [pointer, pointer, size, size, size, size, pointer])
    declare(shim.shim_free, None, [pointer])
    declare(shim.shim_flat_build, pointer, [pointer, size, size, integer, size])
    declare(shim.shim_flat_search, integer, [pointer, pointer, size, size, size, pointer, pointer])
    declare(shim.shim_flat_free, None, [pointer])
    return shim


def declare(function, result, arguments):
    function.restype = result
    function.argtypes = arguments
