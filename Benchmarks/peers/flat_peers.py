#!/usr/bin/env python3
"""Exact (flat) search with NumPy and FAISS, measured the way `nearest-bench flat` measures
swift-nearest: the same datasets, thread counts, batch sizes, passes, budget and recall check.

    python3 Benchmarks/peers/flat_peers.py                 # every dataset, threads 1 and 2
    python3 Benchmarks/peers/flat_peers.py --dataset siftsmall --threads 1

Thread counts are fixed before NumPy and FAISS load their OpenBLAS (it reads
OPENBLAS_NUM_THREADS / OMP_NUM_THREADS once), so each thread count runs in a subprocess of its
own; the parent merges their results into Benchmarks/results/flat-peers-<dataset>.json.

NumPy: scores = |x|^2 - 2 q.x (L2; |q|^2 is the same for every row and is added back to the
k kept) or -q.x (inner product, which on these unit vectors ranks like cosine), one matmul per
batch (a matrix-vector product for batch 1), then argpartition and a sort of the k kept.
FAISS: IndexFlatL2 / IndexFlatIP, index.search(batch, k).

Note that NumPy and FAISS each ship their own OpenBLAS inside their wheels (see the JSON's
`blas` entries): neither uses the system libopenblas that swift-nearest links, so each
library's sgemm peak is measured with its own OpenBLAS, in the same subprocess.
"""

import argparse
import ctypes
import glob
import json
import os
import platform
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.dirname(HERE)
REPOSITORY = os.path.dirname(BENCHMARKS)


# ---------------------------------------------------------------------------------------------
# Options and the parent process


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="folder of datasets (default: ../shared/data from the repository root, or $NEAREST_DATA)")
    parser.add_argument("--dataset", action="append", default=[], help="a dataset folder name; repeat for several (default: all)")
    parser.add_argument("--max-queries", type=int, default=0, help="use only the first N queries (0: all)")
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    parser.add_argument("--batches", default="1,16,256,all", help="batch sizes; 'all' is every query in one batch")
    parser.add_argument("--libraries", default="numpy,faiss", help="numpy, faiss")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--repetitions", type=int, default=5, help="most passes per measurement; the best counts")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--peak-size", type=int, default=2048, help="side of the square sgemm for the peak (0: skip)")
    parser.add_argument("--quiet-threshold", type=float, default=0.15, help="cores other processes may use before a measurement is redone")
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--wait-limit", type=float, default=60.0, help="seconds to wait for a quiet machine before a retry")
    parser.add_argument("--min-recall", type=float, default=0.999)
    parser.add_argument("--results-dir", default=os.path.join(BENCHMARKS, "results"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def data_dir(args):
    if args.data_dir:
        return args.data_dir
    if os.environ.get("NEAREST_DATA"):
        return os.environ["NEAREST_DATA"]
    return os.path.join(os.path.dirname(REPOSITORY), "shared", "data")


def dataset_names(folder, named):
    files = ("base.fvecs", "query.fvecs", "groundtruth.ivecs")
    found = sorted(n for n in os.listdir(folder) if all(os.path.exists(os.path.join(folder, n, f)) for f in files))
    for name in named:
        if name not in found:
            sys.exit(f"no dataset '{name}' in {folder} (found: {', '.join(found)})")
    return named or found


def main(argv):
    args = parse_arguments(argv)
    if args.worker:
        json.dump(worker(args), sys.stdout)
        return 0
    folder = data_dir(args)
    names = dataset_names(folder, args.dataset)
    os.makedirs(args.results_dir, exist_ok=True)
    merged = {}
    for threads in [int(t) for t in args.threads.split(",")]:
        environment = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                           MKL_NUM_THREADS=str(threads))
        command = [sys.executable, os.path.abspath(__file__), "--worker", "--threads", str(threads),
                   "--data-dir", folder] + [a for n in names for a in ("--dataset", n)] + passthrough(args)
        child = subprocess.run(command, env=environment, stdout=subprocess.PIPE, check=True)
        for name, part in json.loads(child.stdout).items():
            if name not in merged:
                merged[name] = part
            else:
                merged[name]["runs"] += part["runs"]
                merged[name]["sgemm_peak"] += part["sgemm_peak"]
                merged[name]["sgemm_shapes"] += part["sgemm_shapes"]
                merged[name]["blas"] += [b for b in part["blas"] if b not in merged[name]["blas"]]
    failures = []
    for name, results in merged.items():
        results["machine"]["load_average_after"] = load_average()
        path = os.path.join(args.results_dir, f"flat-peers-{name}.json")
        write_json(results, path)
        log(f"wrote {path}")
        for run in results["runs"]:
            if run["recall"]["with_ties"] < args.min_recall:
                failures.append(f"{name} {run['path']} threads {run['threads']} batch {run['batch_label']}: {run['recall']}")
    for failure in failures:
        log("RECALL FAILURE: " + failure)
    return 1 if failures else 0


def passthrough(args):
    options = ["--max-queries", args.max_queries, "--batches", args.batches, "--libraries", args.libraries,
               "--budget", args.budget, "--repetitions", args.repetitions, "--k", args.k,
               "--peak-size", args.peak_size, "--quiet-threshold", args.quiet_threshold,
               "--retries", args.retries, "--wait-limit", args.wait_limit]
    return [str(o) for o in options]


def write_json(value, path):
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(temporary, path)


def log(line):
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Contention: how much CPU other processes took during a measurement (see Contention.swift).


def machine_busy_ticks():
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]


class CPUSample:
    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self):
        self.busy = machine_busy_ticks()
        times = os.times()
        self.own = times.user + times.system
        self.time = time.perf_counter()

    def others_load(self):
        end = CPUSample()
        seconds = end.time - self.time
        if seconds <= 0:
            return 0.0
        others = (end.busy - self.busy) / self.TICKS - (end.own - self.own)
        return max(0.0, others / seconds)


def wait_for_quiet(threshold, limit):
    deadline = time.monotonic() + limit
    while True:
        start = CPUSample()
        time.sleep(1)
        load = start.others_load()
        if load < threshold or time.monotonic() >= deadline:
            return load


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


# ---------------------------------------------------------------------------------------------
# The worker: one thread count, every dataset and library.


def worker(args):
    import numpy as np  # after the parent fixed the thread counts in the environment
    import faiss

    threads = int(args.threads)
    faiss.omp_set_num_threads(threads)
    libraries = args.libraries.split(",")
    blas = blas_libraries(np, faiss)
    for library in blas.values():
        library.set_threads(threads)
    quiet = wait_for_quiet(args.quiet_threshold, args.wait_limit)
    if quiet >= args.quiet_threshold:
        log(f"warning: other processes use {quiet:.2f} cores; figures will be noisy")
    # Each library's sgemm peak: the fastest of a square product and the blocks swift-nearest
    # multiplies (256 queries x 2048 rows at each dimension), as nearest-bench measures its own.
    dimensions = sorted({vector_dimension(os.path.join(args.data_dir, n, "base.fvecs")) for n in args.dataset})
    shapes = [(args.peak_size,) * 3] + [(256, 2048, d) for d in dimensions] if args.peak_size > 0 else []
    sgemm_shapes, peaks = [], []
    for name in libraries:
        for m, n, k in shapes:
            best = None
            for attempt in range(args.retries + 1):  # a peak is a maximum: the fastest attempt counts
                if attempt > 0:
                    wait_for_quiet(args.quiet_threshold, args.wait_limit)
                start = CPUSample()
                candidate = sgemm_speed(np, blas[name], m, n, k, args)
                candidate["others_load"] = start.others_load()
                if best is None or candidate["gflops"] > best["gflops"]:
                    best = candidate
                if candidate["others_load"] < args.quiet_threshold:
                    break
            best.update(library=name, threads=threads)
            log(f"{name} sgemm {m}x{n}x{k}, {threads} thread(s): {best['gflops']:.1f} GFLOP/s (OpenBLAS core {blas[name].core})")
            sgemm_shapes.append(best)
        mine = [s for s in sgemm_shapes if s["library"] == name]
        if mine:
            peaks.append(max(mine, key=lambda s: s["gflops"]))

    folder = args.data_dir
    out = {}
    for name in args.dataset:
        data = load_dataset(np, folder, name, args.max_queries)
        runs = []
        searchers = {"numpy": NumpySearch(np, data), "faiss": FaissSearch(np, faiss, data)}
        for label in args.batches.split(","):
            batch = data.queries.shape[0] if label == "all" else int(label)
            if label != "all" and batch >= data.queries.shape[0]:
                continue  # the same as "all"
            for library in libraries:
                search = searchers[library]
                run = quietly(args, lambda: measure_run(np, data, search, library, label, batch, threads, args, peaks))
                log(summary(name, run))
                runs.append(run)
        out[name] = {
            "benchmark": "flat",
            "library": "peers",
            "dataset": {"name": name, "metric": data.metric, "base": int(data.base.shape[0]),
                        "queries": int(data.queries.shape[0]), "dimensions": int(data.base.shape[1])},
            "k": args.k,
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "kernel": platform.release(),
                        "python": platform.python_version(), "numpy": np.__version__, "faiss": faiss.__version__,
                        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
                        "faiss_compile_options": faiss.get_compile_options(),
                        "faiss_distance_compute_blas_threshold": faiss.cvar.distance_compute_blas_threshold,
                        "load_average_before": load_average()},
            "blas": [{"library": n, "config": blas[n].config, "core": blas[n].core, "threads": blas[n].threads()}
                     for n in libraries],
            "sgemm_peak": peaks,
            "sgemm_shapes": sgemm_shapes,
            "runs": runs,
        }
    return out


def quietly(args, body):
    """Runs `body`; redoes it (after waiting for a quiet second) while other processes took
    more than --quiet-threshold cores, keeping the least contended run."""
    kept = None
    for attempt in range(args.retries + 1):
        if attempt > 0:
            now = wait_for_quiet(args.quiet_threshold, args.wait_limit)
            log(f"  other processes used {kept['others_load']:.2f} cores; retrying (now {now:.2f})")
        start = CPUSample()
        run = body()
        run["others_load"] = start.others_load()
        run["attempts"] = attempt + 1
        if kept is None or run["others_load"] < kept["others_load"]:
            kept = run
        if run["others_load"] < args.quiet_threshold:
            break
    return kept


def measure_run(np, data, search, library, label, batch, threads, args, peaks):
    timing = passes(data.queries, batch, args.budget, args.repetitions, lambda q: search(q, args.k))
    flops_per_query = 2.0 * data.base.shape[0] * data.base.shape[1]
    qps = timing["queries"] / timing["best"]
    gflops = flops_per_query * qps / 1e9
    peak = next((p for p in peaks if p["library"] == library), None)
    return {
        "threads": threads, "batch_label": label, "batch": timing["batch"], "path": library,
        "queries_per_second": qps, "gflops": gflops,
        "seconds_per_batch": timing["best"] / timing["batches"],
        "queries_timed": timing["queries"], "repetitions": timing["repetitions"],
        "minor_faults_per_batch": timing["minor_faults_per_batch"],
        "recall": recall(np, data, timing["ids"], min(args.k, data.truth.shape[1])),
        "fraction_of_peak": gflops / peak["gflops"] if peak else None,
    }


def summary(name, run):
    line = (f"{name} t={run['threads']} batch={run['batch_label']} {run['path']}: {run['queries_per_second']:.0f} q/s, "
            f"{run['gflops']:.1f} GFLOP/s, recall {run['recall']['strict']:.4f} (ties {run['recall']['with_ties']:.4f})")
    if run["others_load"] >= 0.15:
        line += f" (contended: others used {run['others_load']:.2f} cores)"
    return line


def passes(queries, requested, budget, repetitions, search):
    """The same passes as Measure.passes in nearest-bench: a warm-up batch sizes a pass of whole
    batches (budget / repetitions), passes repeat until `repetitions` or the budget, at least
    twice unless one pass takes more than three budgets, when a warm-up that long is the only pass."""
    total = queries.shape[0]
    batch = min(requested, total)
    full = total // batch
    t0 = time.perf_counter()
    warm_ids = search(queries[0:batch])
    warmup = time.perf_counter() - t0
    batches = max(1, min(full, int(budget / repetitions / max(warmup, 1e-9))))
    best, spent, reps, ids, faults = float("inf"), 0.0, 0, None, None
    if batches == 1 and warmup >= 3 * budget:
        best, spent, reps, ids = warmup, warmup, 1, [warm_ids]
    while reps < repetitions and (spent < budget or (reps < 2 and best < 3 * budget)):
        results = []
        faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        for b in range(batches):
            results.append(search(queries[b * batch:(b + 1) * batch]))
        elapsed = time.perf_counter() - t0
        pass_faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before) / batches
        if ids is None:
            ids = results
        reps += 1
        spent += elapsed
        if elapsed < best or faults is None:
            faults = pass_faults
        best = min(best, elapsed)
    return {"best": best, "repetitions": reps, "batches": batches, "batch": batch, "queries": batches * batch,
            "ids": ids, "minor_faults_per_batch": faults}


# ---------------------------------------------------------------------------------------------
# Datasets, the two searches, recall


class Data:
    pass


def read_vectors(np, path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    return np.ascontiguousarray(raw.reshape(-1, dim + 1)[:, 1:].view(dtype))


def load_dataset(np, folder, name, max_queries):
    data = Data()
    data.name = name
    lower = name.lower()
    data.metric = "cosine" if lower.endswith(("-angular", "-cosine")) else "ip" if lower.endswith(("-dot", "-ip")) else "l2"
    data.base = read_vectors(np, os.path.join(folder, name, "base.fvecs"), np.float32)
    data.queries = read_vectors(np, os.path.join(folder, name, "query.fvecs"), np.float32)
    if max_queries:
        data.queries = np.ascontiguousarray(data.queries[:max_queries])
    data.truth = read_vectors(np, os.path.join(folder, name, "groundtruth.ivecs"), np.int32)[: data.queries.shape[0]]
    return data


class NumpySearch:
    """What a NumPy user writes: one product per batch, argpartition, sort the k kept."""

    def __init__(self, np, data):
        self.np = np
        self.base = data.base
        self.l2 = data.metric == "l2"
        self.norms = (data.base * data.base).sum(axis=1) if self.l2 else None

    def __call__(self, queries, k):
        np = self.np
        if queries.shape[0] == 1:
            products = (self.base @ queries[0])[None, :]  # matrix-vector for a single query
        else:
            products = queries @ self.base.T
        scores = self.norms - 2.0 * products if self.l2 else -products
        kept = np.argpartition(scores, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(scores, kept, axis=1), axis=1)
        return np.take_along_axis(kept, order, axis=1)


class FaissSearch:
    def __init__(self, np, faiss, data):
        self.index = faiss.IndexFlatL2(data.base.shape[1]) if data.metric == "l2" else faiss.IndexFlatIP(data.base.shape[1])
        self.index.add(data.base)

    def __call__(self, queries, k):
        _, ids = self.index.search(queries, k)
        return ids


def recall(np, data, id_batches, k):
    """Strict recall@k and recall counting exact ties (see Recall.swift)."""
    ids = np.concatenate(id_batches, axis=0)[:, :k].astype(np.int64)
    n = ids.shape[0]
    truth = data.truth[:n, :k].astype(np.int64)
    queries = data.queries[:n].astype(np.float64)

    def distance(rows):  # rows: n x m ids -> n x m float64 distances
        vectors = data.base[rows].astype(np.float64)
        if data.metric == "l2":
            return ((vectors - queries[:, None, :]) ** 2).sum(axis=2)
        dots = (vectors * queries[:, None, :]).sum(axis=2)
        if data.metric == "ip":
            return -dots
        return 1.0 - dots / (np.linalg.norm(vectors, axis=2) * np.linalg.norm(queries, axis=1)[:, None])

    hits = (ids[:, :, None] == truth[:, None, :]).any(axis=2)
    kth = distance(truth[:, k - 1:k])
    tolerance = 1e-6 * np.abs(kth) + 1e-5
    ties = (ids >= 0) & (distance(np.maximum(ids, 0)) <= kth + tolerance)
    return {"strict": float(hits.sum() / (n * k)), "with_ties": float((hits | ties).sum() / (n * k)), "queries": int(n)}


# ---------------------------------------------------------------------------------------------
# Each library's own OpenBLAS, and its sgemm peak


class Blas:
    def __init__(self, path, prefix, suffix):
        self.lib = ctypes.CDLL(path)
        self.prefix, self.suffix = prefix, suffix
        self.function("get_config").restype = ctypes.c_char_p
        self.function("get_corename").restype = ctypes.c_char_p
        self.config = self.function("get_config")().decode().strip()
        self.core = self.function("get_corename")().decode()

    def function(self, name):
        return getattr(self.lib, f"{self.prefix}{name}{self.suffix}")

    def set_threads(self, threads):
        self.function("set_num_threads")(threads)

    def threads(self):
        return self.function("get_num_threads")()


def blas_libraries(np, faiss):
    """NumPy's scipy-openblas and FAISS's own OpenBLAS (both inside the wheels), by path."""
    site = os.path.dirname(os.path.dirname(np.__file__))
    numpy_blas = glob.glob(os.path.join(site, "numpy.libs", "libscipy_openblas*.so"))
    faiss_blas = glob.glob(os.path.join(os.path.dirname(os.path.dirname(faiss.__file__)), "faiss_cpu.libs", "libopenblas*.so"))
    libraries = {}
    if numpy_blas:
        libraries["numpy"] = Blas(numpy_blas[0], "scipy_openblas_", "64_")
    if faiss_blas:
        libraries["faiss"] = Blas(faiss_blas[0], "openblas_", "")
    return libraries


def vector_dimension(path):
    with open(path, "rb") as f:
        return int.from_bytes(f.read(4), "little")


def sgemm_speed(np, blas, m, n, k, args):
    """An m x k by (n x k)^T product (the shape of a flat search) with this library's OpenBLAS:
    a warm-up, then the best of up to --repetitions calls (at least 2) within half a budget."""
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, k)).astype(np.float32)
    c = np.zeros((m, n), np.float32)
    pointer = ctypes.c_void_p
    if blas.prefix.startswith("scipy"):
        def call():
            np.matmul(a, b.T, out=c)
    else:
        sgemm = blas.lib.cblas_sgemm
        def call():
            sgemm(101, 111, 112, m, n, k, ctypes.c_float(1.0), pointer(a.ctypes.data), k,
                  pointer(b.ctypes.data), k, ctypes.c_float(0.0), pointer(c.ctypes.data), n)
    call()  # warm-up
    best, spent, reps = float("inf"), 0.0, 0
    while reps < args.repetitions:
        t0 = time.perf_counter()
        call()
        elapsed = time.perf_counter() - t0
        reps += 1
        spent += elapsed
        best = min(best, elapsed)
        if reps >= 2 and spent >= args.budget / 2:
            break
    return {"m": m, "n": n, "k": k, "seconds": best, "gflops": 2.0 * m * n * k / best / 1e9,
            "repetitions": reps, "blas_core": blas.core}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
