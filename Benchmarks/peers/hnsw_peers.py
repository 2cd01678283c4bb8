#!/usr/bin/env python3
"""HNSW side by side: hnswlib, FAISS IndexHNSWFlat and USearch, built and swept the way
`nearest search` builds and sweeps swift-nearest (M = 16, efConstruction = 200, k = 10).

    python3 Benchmarks/peers/hnsw_peers.py                      # every dataset
    python3 Benchmarks/peers/hnsw_peers.py --dataset siftsmall
    python3 Benchmarks/peers/hnsw_peers.py --quick              # siftsmall, a short sweep
    python3 Benchmarks/peers/hnsw_peers.py --nearest .build/release/nearest   # also run ours
    python3 Benchmarks/peers/hnsw_peers.py --builds-only --nearest .build/release/nearest   # builds only
    python3 Benchmarks/peers/hnsw_peers.py --tables Benchmarks/results/hnsw-peers-*.json

Per library and dataset:

* build with 1 and with 2 threads (seconds, vectors/s, and the CPU seconds the process used,
  which shows how parallel the build really was on a shared machine). hnswlib:
  add_items(num_threads=T); FAISS: faiss.omp_set_num_threads(T) then add; USearch:
  add(threads=T). The index built with the first of --build-threads (default 2, as
  `nearest-bench hnsw` sweeps its 2-thread index) is the one swept; the others are only timed.
  With --nearest, `nearest search ... --threads <first>` (build and batch search on that many
  threads: with the default 2 that is a 2-thread batch, not a single-thread figure; pass
  --build-threads 1,2 for the single-thread sweep of the earlier runs) runs once per sweep round
  and the other thread counts with `--ef <first>` once per build round, for their build time.
* an ef sweep: recall@10 = |top10 ∩ groundtruth[:10]| / 10 averaged over the queries, and
  single-thread queries/s two ways:
    - "loop": a Python loop issuing one query per library call (hnswlib knn_query(q, k=10,
      num_threads=1), FAISS index.search(q[None], k) under omp_set_num_threads(1), USearch
      index.search(q, k, threads=1)). This pays the Python binding overhead once per query
      (argument conversion, result arrays; reported as python_overhead_us).
    - "batch": every query in one call on one thread (hnswlib knn_query(Q, num_threads=1),
      FAISS index.search(Q) with 1 OpenMP thread, USearch search(Q, threads=1)); closest to
      what a C caller looping over queries pays, and to what `nearest search --threads 1`
      measures (one batch on one worker thread).
  Timing on a shared machine: every library's indexes are built first (--build-rounds rounds,
  interleaved across libraries; the fastest build per thread count counts, all are kept in the
  JSON), then the sweep runs in --rounds rounds, each visiting every library at every ef (and,
  with --nearest, running swift-nearest's CLI sweep once), so that a slow spell hits one round
  of everyone rather than one library's whole sweep; each point keeps its fastest round (each
  round is itself the best of --repetitions passes / --budget seconds). Before each
  measurement the script waits (up to --wait-limit s) for other processes in this machine to
  go quiet and redoes a measurement they disturbed; slowdowns from outside the machine (a
  shared host) are not visible to it, which is what the rounds are for (the JSON keeps every
  round's queries/s: qps_*_rounds).
* distance computations per query: FAISS from faiss.cvar.hnsw_stats.ndis, USearch from the
  search result's computed_distances. hnswlib's Python binding does not expose
  metric_distance_computations / metric_hops (they are members of the C++ HierarchicalNSW,
  not bound in Python), so this script reads hnswlib's graph out of the index
  (Index.__getstate__: the layer-0 block and the upper-layer link lists) and replays
  hnswlib's searchKnn + searchBaseLayerST (bare-bone path: no deletions, no filter) in
  Python/NumPy, counting the distances it computes. The replay's top-k is compared with
  hnswlib's own answer ("replay_agreement": fraction of queries with identical ids; tiny float
  rounding differences between NumPy and hnswlib's AVX-512 kernels can flip near-ties). Two
  counts come out: `distance_computations` (distances actually evaluated: the entry point,
  every upper-layer neighbour, the entry again at layer 0, every unvisited layer-0 neighbour;
  swift-nearest counts the same, less the repeated entry) and
  `hnswlib_metric_distance_computations` (what hnswlib's own counter would say: it adds the
  full neighbour-list size of every expanded node, visited neighbours included).
* the queries/s (and distance computations) interpolated at recall@10 = 0.90, 0.95, 0.99:
  linear in recall between the two ef points that bracket the target; None if the sweep never
  reaches it; if the smallest ef is already above the target, that point's value is reported
  with "at_first_ef": true (a lower bound on the queries/s).

Parameters, so that each library runs the paper's M = 16 / efConstruction = 200:
  hnswlib: init_index(M=16, ef_construction=200): M links on the upper layers, 2M = 32 on
    layer 0 (maxM0_ = 2 * M), level multiplier 1 / ln(M).
  FAISS: IndexHNSWFlat(d, 16[, METRIC_INNER_PRODUCT]), hnsw.efConstruction = 200 (FAISS's
    default is 40): set_default_probas(16, 1 / ln 16) gives 32 links on layer 0 and 16 above.
  USearch: Index(ndim, metric, dtype='f32', connectivity=16, expansion_add=200,
    expansion_search=ef): connectivity_base (layer 0) defaults to 2 * connectivity = 32; the
    script reads it back from index.levels_stats (max_edges / nodes per level) into the JSON.
Metric: L2 datasets use squared L2 (hnswlib 'l2', FAISS IndexHNSWFlat default, USearch 'l2sq');
angular datasets (unit vectors) use inner product (hnswlib 'ip' = 1 - q.x, FAISS
METRIC_INNER_PRODUCT, USearch 'ip' = 1 - q.x), which on unit vectors ranks like cosine.

Output: Benchmarks/results/hnsw-peers-<dataset>.json (--builds-only: hnsw-peers-<dataset>-builds.json)
and Markdown tables on stdout; the JSON records library versions, hnswlib's compile flags
(pip builds it from source), FAISS's compile options, USearch's SIMD target and lscpu's model.
"""

import argparse
import gc
import heapq
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.dirname(HERE)
REPOSITORY = os.path.dirname(BENCHMARKS)

DEFAULT_EF = "10,16,20,32,40,64,80,128,160,256,400"
QUICK_EF = "10,20,40,80,160"
TARGETS = (0.90, 0.95, 0.99)
LIBRARIES = ("hnswlib", "faiss", "usearch")


# ---------------------------------------------------------------------------------------------
# Options


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="folder of datasets (default: $NEAREST_DATA, else ../shared/data next to the repository)")
    parser.add_argument("--dataset", action="append", default=[], help="a dataset folder name; repeat for several (default: all)")
    parser.add_argument("--quick", action="store_true", help="siftsmall only, a short ef sweep, fewer passes")
    parser.add_argument("--ef", help=f"comma-separated ef values (default: {DEFAULT_EF}; --quick: {QUICK_EF})")
    parser.add_argument("--libraries", default=",".join(LIBRARIES), help="hnswlib, faiss, usearch")
    parser.add_argument("--build-threads", default="2,1",
                        help="thread counts to build with; the first is the index swept (2: the same as nearest-bench hnsw, "
                             "which sweeps the index it built with its last thread count)")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=100, help="hnswlib random_seed (FAISS and USearch have fixed seeds)")
    parser.add_argument("--max-queries", type=int, default=0, help="use only the first N queries (0: all)")
    parser.add_argument("--budget", type=float, default=0.3, help="seconds of passes per timing before stopping")
    parser.add_argument("--repetitions", type=int, default=2, help="least passes per timing; the best counts")
    parser.add_argument("--max-passes", type=int, default=20)
    parser.add_argument("--quiet-threshold", type=float, default=0.25,
                        help="cores other processes may use during a measurement before it is redone")
    parser.add_argument("--retries", type=int, default=2, help="redos of a measurement disturbed by other processes")
    parser.add_argument("--wait-limit", type=float, default=20.0, help="seconds to wait for a quiet machine before measuring")
    parser.add_argument("--quiet-sample", type=float, default=0.5,
                        help="seconds of each reading of other processes' load before a measurement")
    parser.add_argument("--no-replay", action="store_true", help="skip counting hnswlib's distance computations")
    parser.add_argument("--replay-queries", type=int, default=0, help="replay only the first N queries (0: all)")
    parser.add_argument("--nearest", help="also run this `nearest` binary (search --threads 1 sweep, --threads 2 build)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="sweep rounds (every library at every ef, then one `nearest` run); the best round counts")
    parser.add_argument("--builds-only", action="store_true",
                        help="time the builds only (no sweep); writes hnsw-peers-<dataset>-builds.json")
    parser.add_argument("--build-rounds", type=int, default=2, help="builds per library and thread count; the fastest counts")
    parser.add_argument("--tables", nargs="+", metavar="JSON", help="only print the Markdown tables of result files")
    parser.add_argument("--results-dir", default=os.path.join(BENCHMARKS, "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset = args.dataset or ["siftsmall"]
        args.ef = args.ef or QUICK_EF
        args.rounds = min(args.rounds, 2)
        args.build_rounds = 1
        args.budget = min(args.budget, 0.2)
        args.wait_limit = min(args.wait_limit, 5.0)
        args.replay_queries = args.replay_queries or 50
    if args.builds_only:
        args.rounds = 0
    args.ef = [int(v) for v in (args.ef or DEFAULT_EF).split(",")]
    args.libraries = [l.strip() for l in args.libraries.split(",") if l.strip()]
    for library in args.libraries:
        if library not in LIBRARIES:
            parser.error(f"unknown library '{library}' (choose from {', '.join(LIBRARIES)})")
    args.build_threads = [int(t) for t in args.build_threads.split(",")]
    if args.nearest and args.rounds > 0 and args.build_threads[0] != 1:
        # `nearest search --threads N` builds and searches on N threads: its sweep would be an
        # N-thread batch beside the peers' single-thread figures.
        parser.error("--nearest sweeps through `nearest search --threads <first build thread count>`; "
                     "pass --build-threads 1,2 so that its sweep is single-threaded like the peers'")
    return args


def data_dir(args):
    if args.data_dir:
        return args.data_dir
    if os.environ.get("NEAREST_DATA"):
        return os.environ["NEAREST_DATA"]
    return os.path.join(os.path.dirname(REPOSITORY), "shared", "data")


def dataset_file(folder, stem):
    """base / query (.fvecs or .npy) or groundtruth (.ivecs or .npy) in a dataset folder, or None."""
    for extension in (("ivecs", "npy") if stem == "groundtruth" else ("fvecs", "npy")):
        path = os.path.join(folder, f"{stem}.{extension}")
        if os.path.exists(path):
            return path
    return None


def dataset_folder(folder, name):
    """A dataset is a folder name under the data folder, or a path (anything with a slash)."""
    return name if "/" in name else os.path.join(folder, name)


def cached_ground_truth(name):
    """Where `nearest-bench hnsw` caches the flat index's top 100 for a dataset without ground truth."""
    return os.path.join(BENCHMARKS, ".cache", "groundtruth", os.path.basename(os.path.normpath(name)) + ".ivecs")


def dataset_names(folder, named):
    def usable(path):
        return dataset_file(path, "base") and dataset_file(path, "query")
    found = sorted(n for n in os.listdir(folder) if usable(os.path.join(folder, n)))
    for name in named:
        if not usable(dataset_folder(folder, name)):
            sys.exit(f"no dataset '{name}' (base and query vectors) in {folder} (found: {', '.join(found)})")
    return named or found


def log(line):
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Data


def read_vecs(path, dtype):
    if path.endswith(".npy"):
        return np.ascontiguousarray(np.load(path).astype(dtype, copy=False))
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        return np.zeros((0, 0), dtype=dtype)
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)
    if not (rows[:, 0] == dim).all():
        sys.exit(f"{path}: rows of different lengths")
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def dataset_metric(folder, name):
    """'l2' or 'ip' (inner product on unit vectors, for angular/cosine sets)."""
    text = name.lower()
    readme = os.path.join(folder, "README.md")
    if os.path.exists(readme):
        with open(readme) as f:
            for line in f:
                if "metric:" in line.lower():
                    text += " " + line.lower()
    return "ip" if any(w in text for w in ("angular", "cosine", "inner product")) else "l2"


class Dataset:
    def __init__(self, folder, name, max_queries):
        path = dataset_folder(folder, name)
        name = os.path.basename(os.path.normpath(path))
        self.name = name
        self.base = read_vecs(dataset_file(path, "base"), np.float32)
        self.queries = read_vecs(dataset_file(path, "query"), np.float32)
        self.truth_path = dataset_file(path, "groundtruth") or cached_ground_truth(name)
        if not os.path.exists(self.truth_path):
            sys.exit(f"{name}: no ground truth; run `nearest-bench hnsw --dataset {path}` first (it caches the flat "
                     f"index's top 100 in {self.truth_path})")
        self.truth = read_vecs(self.truth_path, np.int32)
        if max_queries:
            self.queries, self.truth = self.queries[:max_queries], self.truth[:max_queries]
        self.metric = dataset_metric(path, name)
        self.path = path
        self.files = {stem: dataset_file(path, stem) for stem in ("base", "query")}
        self.norms = None
        if self.metric == "ip":
            norms = np.linalg.norm(self.base, axis=1)
            self.norms = (float(norms.min()), float(norms.max()))

    def describe(self):
        d = {"name": self.name, "base": int(self.base.shape[0]), "queries": int(self.queries.shape[0]),
             "dimensions": int(self.base.shape[1]), "metric": self.metric}
        if self.norms:
            d["base_norms"] = list(self.norms)
        return d


def recall(found, truth, k):
    """recall@k: |first k found ∩ true k nearest| / k, averaged over the queries."""
    hits = 0
    for row, gt in zip(found, truth):
        hits += len(set(int(i) for i in row[:k] if i >= 0) & set(int(i) for i in gt[:k]))
    return hits / (k * len(truth))


def release_free_memory():
    """glibc's malloc_trim(0): hands memory freed by an earlier index back to the system, so the
    next build's peak RSS starts from what is really in use."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_rss_reset():
    """Resets this process's peak resident size (VmHWM) to the current one; False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def proc_status(key):
    """A kB field of /proc/self/status (VmRSS, VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None


# ---------------------------------------------------------------------------------------------
# Machine and contention


def machine_busy_ticks():
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]


class Meter:
    """Wall seconds, this process's CPU seconds, and the cores other processes kept busy."""
    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self):
        self.busy = machine_busy_ticks()
        t = os.times()
        self.cpu = t.user + t.system
        self.wall = time.perf_counter()

    def stop(self):
        wall = time.perf_counter() - self.wall
        t = os.times()
        cpu = t.user + t.system - self.cpu
        busy = (machine_busy_ticks() - self.busy) / self.TICKS
        return {"seconds": wall, "cpu_seconds": cpu,
                "other_cores": max(0.0, busy - cpu) / wall if wall > 0 else 0.0}


def other_cores(seconds=0.5):
    meter = Meter()
    time.sleep(seconds)
    return meter.stop()["other_cores"]


def wait_for_quiet(args):
    """Waits (up to --wait-limit s) until other processes use under --quiet-threshold cores.
    Returns (seconds waited, whether it got quiet)."""
    started = time.perf_counter()
    while time.perf_counter() - started < args.wait_limit:
        if other_cores(args.quiet_sample) < args.quiet_threshold:
            return time.perf_counter() - started, True
    return time.perf_counter() - started, False


def measured(function, args):
    """Runs function() -> (seconds, extra) after waiting for quiet; redoes it (up to --retries
    times) while other processes took more than --quiet-threshold cores; keeps the fastest."""
    best = None
    attempts = waited = 0
    while True:
        pause, quiet = wait_for_quiet(args)
        waited += pause
        meter = Meter()
        seconds, extra = function()
        m = meter.stop()
        attempts += 1
        if best is None or seconds < best[0]:
            best = (seconds, extra, m)
        # A redo helps only when the machine was quiet when this attempt began (a burst of
        # other work hit it); when it never got quiet, the load is steady and a redo would not
        # change it.
        if m["other_cores"] < args.quiet_threshold or not quiet or attempts > args.retries:
            break
    seconds, extra, m = best
    return seconds, extra, {"attempts": attempts, "waited_seconds": waited, "other_cores": m["other_cores"],
                            "cpu_seconds": m["cpu_seconds"]}


def lscpu_model():
    try:
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def hnswlib_build_flags():
    """hnswlib 0.8.0 ships as an sdist, so pip compiles it here; its -march decides the SIMD."""
    try:
        import hnswlib
        with open(hnswlib.__file__, "rb") as f:
            data = f.read()
        match = re.search(rb"GNU C\+\+\S* [\d.]+ (-march=\S+)", data)
        flags = match.group(1).decode() if match else None
        avx512 = b"-mavx512f" in data and b"-mno-avx512f" not in data
        return {"march": flags, "avx512": avx512}
    except OSError:
        return {}


def machine_info(libraries):
    info = {"cpu": lscpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release(), "numpy": np.__version__}
    for package in ("hnswlib", "faiss-cpu", "usearch", "hdrhistogram"):
        info[package] = version(package)
    if "hnswlib" in libraries:
        info["hnswlib_build"] = hnswlib_build_flags()
    if "faiss" in libraries:
        import faiss
        info["faiss_compile_options"] = faiss.get_compile_options().strip()
    if "usearch" in libraries:
        from usearch.index import Index
        info["usearch_hardware_acceleration"] = Index(ndim=128, metric="l2sq", dtype="f32").hardware_acceleration
    return info


# ---------------------------------------------------------------------------------------------
# Timing


def best_time(function, args):
    """Best wall time over passes: at least args.repetitions, then until args.budget is spent."""
    times = []
    started = time.perf_counter()
    value = None
    while len(times) < args.max_passes:
        t0 = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - t0)
        if len(times) >= args.repetitions and time.perf_counter() - started >= args.budget:
            break
    return min(times), len(times), value


# ---------------------------------------------------------------------------------------------
# Libraries: each adapter builds, sets ef, searches one query, searches a batch on one thread.


class HnswlibAdapter:
    name = "hnswlib"

    def __init__(self, data, args):
        self.data, self.args = data, args

    def parameters(self):
        return {"space": self.space(), "M": self.args.m, "ef_construction": self.args.ef_construction,
                "random_seed": self.args.seed, "layer0_links": 2 * self.args.m, "upper_links": self.args.m}

    def space(self):
        return "ip" if self.data.metric == "ip" else "l2"

    def build(self, threads):
        import hnswlib
        n, d = self.data.base.shape
        index = hnswlib.Index(space=self.space(), dim=d)
        index.init_index(max_elements=n, M=self.args.m, ef_construction=self.args.ef_construction,
                         random_seed=self.args.seed)
        index.add_items(self.data.base, np.arange(n), num_threads=threads)
        return index

    def describe(self, index):
        state = index.__getstate__()[0]
        return {"M": state["M"], "max_M": state["max_M"], "max_M0": state["max_M0"],
                "ef_construction": state["ef_construction"], "levels": int(state["max_level"]) + 1}

    def set_ef(self, index, ef):
        index.set_ef(ef)

    def search_one(self, index, q, k):
        labels, _ = index.knn_query(q, k=k, num_threads=1)
        return labels[0]

    def search_batch(self, index, queries, k, threads=1):
        labels, _ = index.knn_query(queries, k=k, num_threads=threads)
        return labels.astype(np.int64)

    def index_bytes(self, index):
        return int(index.index_file_size())


class FaissAdapter:
    name = "faiss"

    def __init__(self, data, args):
        self.data, self.args = data, args

    def parameters(self):
        return {"index": "IndexHNSWFlat", "M": self.args.m, "efConstruction": self.args.ef_construction,
                "metric": "METRIC_INNER_PRODUCT" if self.data.metric == "ip" else "METRIC_L2"}

    def build(self, threads):
        import faiss
        faiss.omp_set_num_threads(threads)
        d = self.data.base.shape[1]
        if self.data.metric == "ip":
            index = faiss.IndexHNSWFlat(d, self.args.m, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexHNSWFlat(d, self.args.m)
        index.hnsw.efConstruction = self.args.ef_construction
        index.add(self.data.base)
        faiss.omp_set_num_threads(1)
        return index

    def describe(self, index):
        return {"layer0_links": int(index.hnsw.nb_neighbors(0)), "upper_links": int(index.hnsw.nb_neighbors(1)),
                "efConstruction": int(index.hnsw.efConstruction), "levels": int(index.hnsw.max_level) + 1}

    def set_ef(self, index, ef):
        import faiss
        faiss.omp_set_num_threads(1)
        index.hnsw.efSearch = ef

    def search_one(self, index, q, k):
        _, labels = index.search(q.reshape(1, -1), k)
        return labels[0]

    def search_batch(self, index, queries, k, threads=1):
        import faiss
        if threads != 1:
            faiss.omp_set_num_threads(threads)
        try:
            _, labels = index.search(queries, k)
        finally:
            if threads != 1:
                faiss.omp_set_num_threads(1)
        return labels.astype(np.int64)

    def index_bytes(self, index):
        import faiss
        return int(faiss.serialize_index(index).nbytes)

    def distance_computations(self, index, queries, k):
        import faiss
        stats = faiss.cvar.hnsw_stats
        stats.reset()
        index.search(queries, k)
        return {"distance_computations": stats.ndis / len(queries), "hops": stats.nhops / len(queries)}


class UsearchAdapter:
    name = "usearch"

    def __init__(self, data, args):
        self.data, self.args = data, args

    def metric(self):
        return "ip" if self.data.metric == "ip" else "l2sq"

    def parameters(self):
        return {"metric": self.metric(), "dtype": "f32", "connectivity": self.args.m,
                "expansion_add": self.args.ef_construction}

    def build(self, threads):
        from usearch.index import Index
        n, d = self.data.base.shape
        index = Index(ndim=d, metric=self.metric(), dtype="f32", connectivity=self.args.m,
                      expansion_add=self.args.ef_construction, expansion_search=64)
        index.add(np.arange(n, dtype=np.uint64), self.data.base, threads=threads)
        return index

    def describe(self, index):
        levels = []
        for level, s in enumerate(index.levels_stats):
            if s.nodes:
                levels.append({"level": level, "nodes": int(s.nodes), "edges": int(s.edges),
                               "max_edges": int(s.max_edges), "links_per_node": s.max_edges / s.nodes})
        return {"connectivity": int(index.connectivity), "expansion_add": int(index.expansion_add),
                "layer0_links": levels[0]["links_per_node"] if levels else None,
                "upper_links": levels[1]["links_per_node"] if len(levels) > 1 else None,
                "levels": levels, "hardware_acceleration": index.hardware_acceleration,
                "dtype": str(index.dtype), "metric": str(index.metric)}

    def set_ef(self, index, ef):
        index.expansion_search = ef

    def search_one(self, index, q, k):
        return index.search(q, k, threads=1).keys

    def search_batch(self, index, queries, k, threads=1):
        matches = index.search(queries, k, threads=threads)
        keys = np.asarray(matches.keys).astype(np.int64)
        counts = np.asarray(matches.counts)
        for row, count in enumerate(counts):  # unfilled slots
            keys[row, count:] = -1
        return keys

    def index_bytes(self, index):
        return int(index.serialized_length)

    def distance_computations(self, index, queries, k):
        matches = index.search(queries, k, threads=1)
        return {"distance_computations": matches.computed_distances / len(queries),
                "visited_members": matches.visited_members / len(queries)}


ADAPTERS = {"hnswlib": HnswlibAdapter, "faiss": FaissAdapter, "usearch": UsearchAdapter}


# ---------------------------------------------------------------------------------------------
# hnswlib replay: its search, on its own graph, counting distance computations.


class HnswlibGraph:
    def __init__(self, index, data):
        state = index.__getstate__()[0]
        n = state["cur_element_count"]
        size = state["size_data_per_element"]
        self.max_m0 = state["max_M0"]
        self.max_m = state["max_M"]
        block = np.asarray(state["data_level0"], dtype=np.uint8)[: n * size].reshape(n, size)
        words = block[:, : 4 * (1 + self.max_m0)].copy().view(np.uint32)
        self.l0_count = (words[:, 0] & 0xFFFF).astype(np.int64)
        self.l0_links = words[:, 1:].astype(np.int64)
        labels = block[:, state["label_offset"]: state["label_offset"] + 8].copy().view(np.uint64)[:, 0]
        self.labels = labels.astype(np.int64)
        self.vectors = data.base[self.labels]  # internal order
        self.levels = np.asarray(state["element_levels"], dtype=np.int64)[:n]
        link_bytes = np.asarray(state["link_lists"], dtype=np.uint8)
        per_level = state["size_links_per_element"]
        self.upper = {}
        offset = 0
        for node in np.nonzero(self.levels > 0)[0]:
            level = int(self.levels[node])
            chunk = link_bytes[offset: offset + per_level * level].copy().view(np.uint32).reshape(level, -1)
            self.upper[int(node)] = [chunk[l, 1: 1 + (chunk[l, 0] & 0xFFFF)].astype(np.int64).tolist()
                                     for l in range(level)]
            offset += per_level * level
        self.entry = int(state["enterpoint_node"])
        self.max_level = int(state["max_level"])
        self.ip = data.metric == "ip"
        self.visited = np.zeros(n, dtype=np.int32)
        self.tag = 0

    def distances(self, q, ids):
        rows = self.vectors[ids]
        if self.ip:
            return (1.0 - rows @ q).astype(np.float32)
        diff = rows - q
        return np.einsum("ij,ij->i", diff, diff)

    def search(self, q, k, ef):
        """hnswlib searchKnn: returns (labels, distances computed, hnswlib's own counter)."""
        ef = max(ef, k)
        computed = 1
        metric = 0
        current = self.entry
        current_d = float(self.distances(q, np.array([current]))[0])
        for level in range(self.max_level, 0, -1):
            changed = True
            while changed:
                changed = False
                neighbours = self.upper[current][level - 1]
                metric += len(neighbours)
                computed += len(neighbours)
                if not neighbours:
                    continue
                ds = self.distances(q, np.array(neighbours)).tolist()
                for d, c in zip(ds, neighbours):
                    if d < current_d:
                        current_d, current = d, c
                        changed = True
        # searchBaseLayerST<bare_bone_search = true>
        self.tag += 1
        visited = self.visited
        d0 = float(self.distances(q, np.array([current]))[0])
        computed += 1
        visited[current] = self.tag
        top = [(-d0, -current)]        # max-heap of (distance, id)
        candidates = [(d0, -current)]  # min distance first; ties: larger id first
        lower = d0
        while candidates:
            d, negative = candidates[0]
            if d > lower:
                break
            heapq.heappop(candidates)
            node = -negative
            count = self.l0_count[node]
            neighbours = self.l0_links[node, :count]
            metric += int(count)
            fresh = neighbours[visited[neighbours] != self.tag]
            if fresh.size == 0:
                continue
            visited[fresh] = self.tag
            computed += fresh.size
            for dist, c in zip(self.distances(q, fresh).tolist(), fresh.tolist()):
                if len(top) < ef or lower > dist:
                    heapq.heappush(candidates, (dist, -c))
                    heapq.heappush(top, (-dist, -c))
                    if len(top) > ef:
                        heapq.heappop(top)
                    lower = -top[0][0]
        best = sorted((-d, -c) for d, c in top)[:k]
        return [int(self.labels[c]) for _, c in best], computed, metric


def replay_hnswlib(index, data, efs, k, reference, limit):
    if limit <= 0 or limit > len(data.queries):
        limit = len(data.queries)
    graph = HnswlibGraph(index, data)
    out = {}
    for ef in efs:
        t0 = time.perf_counter()
        computed = metric = agree = 0
        for i in range(limit):
            labels, c, m = graph.search(data.queries[i], k, ef)
            computed += c
            metric += m
            agree += labels == [int(v) for v in reference[ef][i][:k]]
        out[ef] = {"distance_computations": computed / limit, "hnswlib_metric_distance_computations": metric / limit,
                   "replay_agreement": agree / limit, "replay_queries": limit}
        log(f"    replay ef {ef}: {computed / limit:.1f} distances/query, agreement {agree / limit:.3f} "
            f"({time.perf_counter() - t0:.1f} s)")
    return out


# ---------------------------------------------------------------------------------------------
# Running one library on one dataset


def build_round(adapter, data, threads, args):
    """One timed build; returns (record, index)."""
    n = data.base.shape[0]

    def one_build():
        gc.collect()
        release_free_memory()
        reset = peak_rss_reset()
        before = proc_status("VmRSS")
        t0 = time.perf_counter()
        built = adapter.build(threads)
        seconds = time.perf_counter() - t0
        peak = proc_status("VmHWM") if reset else None
        return seconds, (built, peak, peak - before if peak else None)

    seconds, (index, peak, increase), extra = measured(one_build, args)
    size = adapter.index_bytes(index)
    log(f"  {adapter.name} build, {threads} thread(s): {seconds:.2f} s ({n / seconds:,.0f} vectors/s, "
        f"cpu {extra['cpu_seconds']:.1f} s, others {extra['other_cores']:.2f} cores, attempts {extra['attempts']}, "
        f"peak RSS +{(increase or 0) / 2**20:.1f} MiB, {size / n:.0f} bytes/vector)")
    return dict({"threads": threads, "seconds": seconds, "peak_rss_bytes": peak, "peak_rss_increase_bytes": increase,
                 "index_bytes": size, "bytes_per_vector": size / n}, **extra), index


def summarize_builds(records, n):
    """The fastest build per thread count, with every attempt's seconds."""
    out = []
    for threads in sorted({r["threads"] for r in records}):
        mine = [r for r in records if r["threads"] == threads]
        best = min(mine, key=lambda r: r["seconds"])
        out.append(dict(best, vectors_per_second=n / best["seconds"], rounds=[r["seconds"] for r in mine]))
    return out


def latency_percentiles(nanoseconds):
    """p50 and p99 in µs through an HdrHistogram (3 significant digits, as nearest-bench's)."""
    from hdrh.histogram import HdrHistogram
    histogram = HdrHistogram(1, 60 * 10**9, 3)
    for value in nanoseconds:
        histogram.record_value(max(1, int(value)))
    return histogram.get_value_at_percentile(50) / 1000, histogram.get_value_at_percentile(99) / 1000


def sweep_point(adapter, index, data, ef, args):
    """Times the per-call loop (with each call's latency), the one-thread batch and the
    all-threads batch at one ef (one round)."""
    queries, k = data.queries, args.k
    adapter.set_ef(index, ef)
    clock = time.perf_counter_ns

    def loop():
        found, took = [], []
        for q in queries:
            t0 = clock()
            found.append(adapter.search_one(index, q, k))
            took.append(clock() - t0)
        return found, took

    def timed(function):
        seconds, passes, found = best_time(function, args)
        return seconds, (passes, found)

    def fastest_loop():
        """Passes like best_time; the fastest pass's latencies count."""
        best, started, passes = None, time.perf_counter(), 0
        while passes < args.max_passes:
            found, took = loop()
            seconds = sum(took) / 1e9
            passes += 1
            if best is None or seconds < best[0]:
                best = (seconds, found, took)
            if passes >= args.repetitions and time.perf_counter() - started >= args.budget:
                break
        return best[0], best[1:]

    loop_seconds, (loop_found, took), loop_extra = measured(fastest_loop, args)
    p50, p99 = latency_percentiles(took)
    batch_seconds, (_, batch_found), batch_extra = measured(
        lambda: timed(lambda: adapter.search_batch(index, queries, k)), args)
    threads = os.cpu_count()
    parallel_seconds, _, parallel_extra = measured(
        lambda: timed(lambda: adapter.search_batch(index, queries, k, threads=threads)), args)
    return {"loop_seconds": loop_seconds, "batch_seconds": batch_seconds, "parallel_seconds": parallel_seconds,
            "loop_found": loop_found, "batch_found": batch_found, "latency_p50_us": p50, "latency_p99_us": p99,
            "other_cores_loop": loop_extra["other_cores"], "other_cores_batch": batch_extra["other_cores"],
            "other_cores_parallel": parallel_extra["other_cores"], "parallel_threads": threads}


def run_dataset(data, args):
    """Builds every library's index (in rounds, interleaved across libraries), then sweeps ef in
    rounds, each round visiting every library at every ef (and running swift-nearest's CLI once,
    with --nearest), keeping each point's fastest round: a burst of load from outside the
    machine's view then hits one round of every library alike rather than one library's sweep."""
    n, nq, k = data.base.shape[0], len(data.queries), args.k
    adapters = [ADAPTERS[name](data, args) for name in args.libraries]
    build_records = {a.name: [] for a in adapters}
    indexes = {}
    sweep_threads = args.build_threads[0]
    order = args.build_threads[1:] + args.build_threads[:1]  # the swept count last, its index kept
    ours = {"library": "swift-nearest", "sweep_runs": [], "build_records": []} if args.nearest else None
    for build_round_number in range(args.build_rounds):
        for adapter in adapters:
            indexes.pop(adapter.name, None)
            for threads in order:
                record, index = build_round(adapter, data, threads, args)
                build_records[adapter.name].append(record)
                if threads == sweep_threads:
                    indexes[adapter.name] = index
                del index
        if ours is not None:  # its multi-thread builds sit among the peers' builds
            for threads in args.build_threads[1:] + (args.build_threads[:1] if args.rounds == 0 else []):
                nearest_run(args.nearest, data, args, threads, ours)
    if args.rounds == 0:  # --builds-only
        runs = [{"library": a.name, "parameters": a.parameters(), "structure": a.describe(indexes[a.name]),
                 "builds": summarize_builds(build_records[a.name], n)} for a in adapters]
        if ours is not None:
            runs.append({"library": "swift-nearest", "commands": ours["commands"],
                         "builds": summarize_builds(ours["build_records"], n)})
        return runs

    points = {a.name: {ef: [] for ef in args.ef} for a in adapters}
    for round_number in range(args.rounds):
        log(f"  sweep round {round_number + 1}/{args.rounds}")
        for ef in args.ef:
            for adapter in adapters:
                p = sweep_point(adapter, indexes[adapter.name], data, ef, args)
                points[adapter.name][ef].append(p)
                log(f"    {adapter.name:8s} ef {ef:4d}: recall {recall(p['batch_found'], data.truth, k):.4f}  "
                    f"loop {nq / p['loop_seconds']:9,.0f} q/s (p50 {p['latency_p50_us']:.1f} µs, p99 "
                    f"{p['latency_p99_us']:.1f} µs)  batch {nq / p['batch_seconds']:9,.0f} q/s  "
                    f"{p['parallel_threads']} threads {nq / p['parallel_seconds']:9,.0f} q/s")
        if ours is not None:
            nearest_run(args.nearest, data, args, sweep_threads, ours)

    runs = []
    for adapter in adapters:
        index = indexes[adapter.name]
        rows = []
        batch_results = {}
        for ef in args.ef:
            rounds = points[adapter.name][ef]
            loop_seconds = min(r["loop_seconds"] for r in rounds)
            batch_seconds = min(r["batch_seconds"] for r in rounds)
            parallel_seconds = min(r["parallel_seconds"] for r in rounds)
            fastest_loop = min(rounds, key=lambda r: r["loop_seconds"])
            found = rounds[-1]
            batch_results[ef] = found["batch_found"]
            adapter.set_ef(index, ef)
            deep = min(100, data.truth.shape[1], data.base.shape[0])
            wide = adapter.search_batch(index, data.queries, deep, threads=os.cpu_count()) if deep > k else None
            row = {"ef": ef, "recall": recall(found["batch_found"], data.truth, k),
                   "recall_at1": recall(found["batch_found"], data.truth, 1),
                   "recall_at10": recall(found["batch_found"], data.truth, 10) if k >= 10 else None,
                   "recall_at100": recall(wide, data.truth, deep) if wide is not None else None,
                   "recall_depth": deep,
                   "recall_loop": recall(found["loop_found"], data.truth, k),
                   "qps_loop": nq / loop_seconds, "qps_batch": nq / batch_seconds,
                   "qps_parallel": nq / parallel_seconds, "parallel_threads": found["parallel_threads"],
                   "latency_p50_us": fastest_loop["latency_p50_us"], "latency_p99_us": fastest_loop["latency_p99_us"],
                   "qps_loop_rounds": [nq / r["loop_seconds"] for r in rounds],
                   "qps_batch_rounds": [nq / r["batch_seconds"] for r in rounds],
                   "qps_parallel_rounds": [nq / r["parallel_seconds"] for r in rounds],
                   "python_overhead_us": 1e6 * (loop_seconds - batch_seconds) / nq,
                   "other_cores_loop": max(r["other_cores_loop"] for r in rounds),
                   "other_cores_batch": max(r["other_cores_batch"] for r in rounds),
                   "other_cores_parallel": max(r["other_cores_parallel"] for r in rounds)}
            if hasattr(adapter, "distance_computations"):
                adapter.set_ef(index, ef)
                row.update(adapter.distance_computations(index, data.queries, k))
            rows.append(row)
        if adapter.name == "hnswlib":
            if args.no_replay:
                note = "skipped (--no-replay)"
            else:
                log("  hnswlib: replaying searches to count distance computations")
                replay = replay_hnswlib(index, data, args.ef, k, batch_results, args.replay_queries)
                for row in rows:
                    row.update(replay[row["ef"]])
                note = ("replayed in Python on hnswlib's own graph (the binding does not expose "
                        "metric_distance_computations)")
        elif adapter.name == "faiss":
            note = "faiss.cvar.hnsw_stats.ndis / queries"
        else:
            note = "BatchMatches.computed_distances / queries"
        runs.append({"library": adapter.name, "parameters": adapter.parameters(), "structure": adapter.describe(index),
                     "builds": summarize_builds(build_records[adapter.name], n), "sweep": rows,
                     "distance_computations_source": note,
                     "at_recall": {key: at_recall(rows, key) for key in ("qps_loop", "qps_batch", "qps_parallel",
                                                                         "distance_computations")
                                   if all(key in r for r in rows)}})
    indexes.clear()
    gc.collect()
    if ours is not None:
        runs.append(nearest_summary(ours, n))
    return runs


# ---------------------------------------------------------------------------------------------
# swift-nearest through its CLI (optional)


def nearest_command(binary, data, args, threads):
    metric = "cosine" if data.metric == "ip" else "l2"
    sweeping = threads == args.build_threads[0] and args.rounds > 0
    efs = ",".join(str(e) for e in args.ef) if sweeping else str(args.ef[0])
    return [binary, "search", "--base", data.files["base"], "--queries", data.files["query"],
            "--groundtruth", data.truth_path, "--metric", metric,
            "--m", str(args.m), "--ef-construction", str(args.ef_construction), "--k", str(args.k),
            "--ef", efs, "--threads", str(threads), "--json"]


def nearest_run(binary, data, args, threads, ours):
    """One `nearest search` run: --threads 1 sweeps every ef (single-thread build and batch search);
    --threads 2 is run for its build time only."""
    command = nearest_command(binary, data, args, threads)
    ours.setdefault("commands", [])
    if " ".join(command) not in ours["commands"]:
        ours["commands"].append(" ".join(command))
    log(f"  swift-nearest: {' '.join(command)}")
    waited, _ = wait_for_quiet(args)
    meter = Meter()
    result = json.loads(subprocess.run(command, stdout=subprocess.PIPE, check=True).stdout)
    m = meter.stop()
    # "other" includes the child itself, so this is the machine's whole busy share.
    ours["build_records"].append({"threads": result["threads"], "seconds": result["build_seconds"],
                                  "waited_seconds": waited,
                                  "cores_busy_during_run": m["other_cores"] + m["cpu_seconds"] / m["seconds"]})
    log(f"  swift-nearest build, {threads} thread(s): {result['build_seconds']:.2f} s")
    if threads == args.build_threads[0] and args.rounds > 0:
        ours["sweep_runs"].append(result["results"])
        log("    " + "  ".join(f"ef {r['ef']}: {r['recall']:.4f} {r['qps']:,.0f} q/s" for r in result["results"]))


def nearest_summary(ours, n):
    out = {"library": "swift-nearest", "commands": ours["commands"],
           "builds": summarize_builds(ours["build_records"], n), "sweep": [],
           "parameters": {"note": "qps_batch: `nearest search --threads 1`, one batch per ef on one worker thread"}}
    for rows in zip(*ours["sweep_runs"]):
        best = max(rows, key=lambda r: r["qps"])
        out["sweep"].append({"ef": best["ef"], "recall": best["recall"], "qps_batch": best["qps"],
                             "qps_batch_rounds": [r["qps"] for r in rows],
                             "distance_computations": best["distance_computations"]})
    out["at_recall"] = {key: at_recall(out["sweep"], key) for key in ("qps_batch", "distance_computations")}
    return out


# ---------------------------------------------------------------------------------------------
# Interpolation at target recalls


def at_recall(rows, key, targets=TARGETS):
    """{target: {"value", "ef_low", "ef_high", "at_first_ef"} or None}, linear in recall."""
    points = sorted(rows, key=lambda r: r["ef"])
    found = {}
    for target in targets:
        label = f"{target:.2f}"
        found[label] = None
        if not points:
            continue
        if points[0]["recall"] >= target:
            found[label] = {"value": points[0][key], "ef_low": points[0]["ef"], "ef_high": points[0]["ef"],
                            "at_first_ef": True}
            continue
        for low, high in zip(points, points[1:]):
            if low["recall"] < target <= high["recall"]:
                share = (target - low["recall"]) / (high["recall"] - low["recall"])
                value = low[key] + share * (high[key] - low[key])
                found[label] = {"value": value, "ef_low": low["ef"], "ef_high": high["ef"], "at_first_ef": False}
                break
    return found


# ---------------------------------------------------------------------------------------------
# Markdown


def cell(entry, digits=0):
    if entry is None:
        return "–"
    text = f"{entry['value']:,.{digits}f}"
    return "≥" + text if entry["at_first_ef"] else text


def build_cell(run, threads):
    build = next((b for b in run["builds"] if b["threads"] == threads), None)
    return f"{build['seconds']:.2f}" if build else "–"


def builds_markdown(results):
    data = results["dataset"]
    lines = [f"### {data['name']} builds (M = {results['M']}, efConstruction = {results['ef_construction']}; "
             f"fastest of {results['timing']['build_rounds']} rounds)", "",
             "| library | 1T s | 2T s | 1T vectors/s | 2T vectors/s | 2T speedup | 2T rounds (s) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for run in results["runs"]:
        b = {x["threads"]: x for x in run["builds"]}
        one, two = b.get(1), b.get(2)
        lines.append(f"| {run['library']} | {one['seconds'] if one else 0:.2f} | {two['seconds'] if two else 0:.2f} | "
                     f"{one['vectors_per_second'] if one else 0:,.0f} | {two['vectors_per_second'] if two else 0:,.0f} | "
                     f"{one['seconds'] / two['seconds'] if one and two else 0:.2f} | "
                     f"{', '.join(f'{v:.2f}' for v in two['rounds']) if two else ''} |")
    return "\n".join(lines) + "\n"


def markdown(results):
    if not results["runs"] or "sweep" not in results["runs"][0]:
        return builds_markdown(results)
    data = results["dataset"]
    lines = [f"### {data['name']} ({data['base']:,} × {data['dimensions']}, {data['queries']:,} queries, "
             f"{data['metric']}; M = {results['M']}, efConstruction = {results['ef_construction']}, k = {results['k']})", ""]
    header = ("| library | mode | qps @0.90 | qps @0.95 | qps @0.99 | dist/q @0.95 | ns/dist @0.95 | max recall | "
              "build 1T s | build 2T s | 1T vectors/s |")
    lines += [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in results["runs"]:
        modes = ["batch"] if run["library"] == "swift-nearest" else ["batch", "loop"]
        for mode in modes:
            key = f"qps_{mode}"
            at = run["at_recall"].get(key, {})
            dist = run["at_recall"].get("distance_computations", {}).get("0.95")
            one = next((b for b in run["builds"] if b["threads"] == 1), None)
            rate = f"{one['vectors_per_second']:,.0f}" if one else "–"
            q95 = at.get("0.95")
            per = (f"{1e9 / (q95['value'] * dist['value']):.0f}"
                   if q95 and dist and not (q95["at_first_ef"] or dist["at_first_ef"]) else "–")
            lines.append(f"| {run['library']} | {mode} | {cell(at.get('0.90'))} | {cell(at.get('0.95'))} | "
                         f"{cell(at.get('0.99'))} | {cell(dist) if mode == 'batch' else ''} | {per} | "
                         f"{max(r['recall'] for r in run['sweep']):.4f} | "
                         f"{build_cell(run, 1) if mode == 'batch' else ''} | {build_cell(run, 2) if mode == 'batch' else ''} | "
                         f"{rate if mode == 'batch' else ''} |")
    lines.append("")
    lines.append("qps: single-thread queries/s interpolated at recall@10 (≥: the smallest ef already exceeds it); "
                 "batch = all queries in one call on one thread, loop = one Python call per query. "
                 "ns/dist: search time per distance computation at recall 0.95 (1e9 ÷ (qps × dist/q)): "
                 "the per-distance cost, graph walking and heaps included.")
    lines.append("")
    ours = next((r for r in results["runs"] if r["library"] == "swift-nearest"), None)
    if ours:
        lines.append("swift-nearest ÷ peer, single-thread batch queries/s at equal recall@10 (above 1: swift-nearest "
                     "is faster); dist ratio = swift-nearest's distance computations per query ÷ the peer's at 0.95.")
        lines.append("")
        lines.append("| peer | @0.90 | @0.95 | @0.99 | dist ratio @0.95 | build 1T ratio (peer s ÷ ours) | build 2T ratio |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for run in results["runs"]:
            if run is ours:
                continue
            cells = []
            for target in ("0.90", "0.95", "0.99"):
                a, b = ours["at_recall"]["qps_batch"].get(target), run["at_recall"]["qps_batch"].get(target)
                cells.append(f"{a['value'] / b['value']:.2f}" if a and b and not (a["at_first_ef"] or b["at_first_ef"]) else "–")
            a = ours["at_recall"]["distance_computations"].get("0.95")
            b = run["at_recall"].get("distance_computations", {}).get("0.95")
            cells.append(f"{a['value'] / b['value']:.2f}" if a and b and not (a["at_first_ef"] or b["at_first_ef"]) else "–")
            for threads in (1, 2):
                a = next((x for x in ours["builds"] if x["threads"] == threads), None)
                b = next((x for x in run["builds"] if x["threads"] == threads), None)
                cells.append(f"{b['seconds'] / a['seconds']:.2f}" if a and b else "–")
            lines.append(f"| {run['library']} | " + " | ".join(cells) + " |")
        lines.append("")
    for run in results["runs"]:
        lines.append(f"#### {run['library']} sweep")
        lines.append("")
        lines.append("| ef | recall@10 | qps batch | qps loop | overhead µs/q | dist/q | hnswlib counter |")
        lines.append("|---:|---:|---:|---:|---:|---:|---:|")
        for r in run["sweep"]:
            loop = f"{r['qps_loop']:,.0f}" if "qps_loop" in r else ""
            overhead = f"{r['python_overhead_us']:.1f}" if "python_overhead_us" in r else ""
            dist = f"{r['distance_computations']:.1f}" if "distance_computations" in r else "n/a"
            counter = f"{r['hnswlib_metric_distance_computations']:.1f}" if "hnswlib_metric_distance_computations" in r else ""
            lines.append(f"| {r['ef']} | {r['recall']:.4f} | {r['qps_batch']:,.0f} | {loop} | {overhead} | {dist} | {counter} |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def write_json(value, path):
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(temporary, path)


def main(argv):
    args = parse_arguments(argv)
    if args.tables:
        for path in args.tables:
            with open(path) as f:
                print(markdown(json.load(f)) + "\n")
        return 0
    folder = data_dir(args)
    names = dataset_names(folder, args.dataset)
    os.makedirs(args.results_dir, exist_ok=True)
    machine = machine_info(args.libraries)
    log(f"machine: {machine['cpu']}, {machine['cores']} cores; hnswlib {machine.get('hnswlib')}, "
        f"faiss-cpu {machine.get('faiss-cpu')}, usearch {machine.get('usearch')}")
    for name in names:
        data = Dataset(folder, name, args.max_queries)
        log(f"{data.name}: {data.base.shape[0]:,} x {data.base.shape[1]}, {len(data.queries):,} queries, {data.metric}")
        results = {"benchmark": "hnsw", "library": "peers", "dataset": data.describe(), "M": args.m,
                   "ef_construction": args.ef_construction, "k": args.k, "ef": args.ef,
                   "machine": dict(machine, load_average_before=" ".join(f"{v:.2f}" for v in os.getloadavg())),
                   "timing": {"rounds": args.rounds, "build_rounds": args.build_rounds, "repetitions": args.repetitions,
                              "budget_seconds": args.budget, "best_of": True},
                   "command": " ".join([os.path.relpath(sys.argv[0], REPOSITORY)] + argv),
                   "runs": []}
        results["runs"] = run_dataset(data, args)
        results["machine"]["load_average_after"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
        suffix = "-builds" if args.rounds == 0 else ""
        path = os.path.join(args.results_dir, f"hnsw-peers-{data.name}{suffix}.json")
        write_json(results, path)
        log(f"wrote {path}")
        print(markdown(results) if args.rounds else builds_markdown(results), flush=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
