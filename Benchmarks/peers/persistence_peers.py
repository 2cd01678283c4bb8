#!/usr/bin/env python3
"""Persistence side by side: how hnswlib, FAISS IndexHNSWFlat, USearch and swift-nearest save,
load and memory-map an HNSW index (M = 16, efConstruction = 200, built on 2 threads; the build
time is recorded but is not the point).

    python3 Benchmarks/peers/persistence_peers.py --nearest .build/release/nearest
    python3 Benchmarks/peers/persistence_peers.py --nearest .build/release/nearest --dataset siftsmall
    python3 Benchmarks/peers/persistence_peers.py --tables Benchmarks/results/persistence-*.json

Per dataset and system:

* save: the library's own call (hnswlib save_index, faiss.write_index, USearch save), timed
  --repetitions times, then an fsync of the written file timed on its own; "save + fsync" is the
  sum. None of the peers fsyncs. swift-nearest's save_seconds (from `nearest build --json`, one
  sample per build) writes a temporary file, fsyncs it, renames it into place and fsyncs the
  directory, and computes two CRC32C checksums on the way.
* file size in bytes and bytes per vector.
* open, per variant, warm and cold page cache, --repetitions times each (the median counts, all
  samples are in the JSON):
    - hnswlib: Index(space, dim) + load_index(path) (reads the whole file into malloc'd memory).
    - FAISS: faiss.read_index(path) (reads everything), and read_index(path, IO_FLAG_MMAP) and
      read_index(path, IO_FLAG_MMAP_IFC). Whether a flag really maps the file is checked, not
      assumed: the file must show up in /proc/self/maps while the index is open, and the
      process's anonymous memory (RssAnon) must not grow by about the file's size.
    - USearch: Index(...) + load(path) (reads everything) and Index(...) + view(path)
      (memory-mapped, searched in place).
    - swift-nearest, through the CLI: `nearest search --index F [--mmap] --queries Q1 --ef 10
      --k 10 --threads 1 --json` over a one-query .fvecs file; open_seconds is the full load
      (copy + header, both section checksums and every record and link validated) or, with
      --mmap, the mapped view (header and layout validated only). `nearest info F --json`
      (mapped view) is timed too.
* time to first query: open + one k = 10, ef = 10 search of the dataset's first query on one
  thread, measured inside a fresh process per sample, so that nothing (allocator, OpenMP pool,
  lazy initialisation) is left warm by an earlier sample: peers, a child Python process that
  imports the library and reads the query, then times open + search with perf_counter;
  swift-nearest, open_seconds + 1 / qps of its one-query run. For swift-nearest the whole process is timed as
  well: wall time of the `nearest search` run minus the wall time of `nearest info` without an
  index (process start, argument parsing, runtime and BLAS initialisation), both medians.
  Every variant's first-query answer is compared with the in-memory index's answer.
* memory after open + first query: peers, growth of the child's RSS (RssAnon: copied data, plus
  RssFile: mapped pages touched; both kept in the JSON) from just before the open to just after
  the query; swift-nearest, the run's peak RSS (GNU time %M) minus the peak RSS of
  `nearest info`. A full load of swift-nearest maps the file and copies it, so its peak holds
  both for a moment.

Cold cache: before each cold sample the index file is fsynced and its pages dropped with
posix_fadvise(POSIX_FADV_DONTNEED); `fincore` confirms none stays resident (recorded in the
JSON). This evicts only that file, so other work on the machine keeps its cache (a global
`echo 3 > /proc/sys/vm/drop_caches` would not). The machine is a VM: a "cold" read goes to the
virtual disk, which the host may itself serve from its own cache, so cold numbers are a lower
bound on a real cold disk. The libraries, the `nearest` binary and the query file stay warm.

Output: Benchmarks/results/persistence-<dataset>.json and Markdown tables on stdout.
"""

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.dirname(HERE)
REPOSITORY = os.path.dirname(BENCHMARKS)
sys.path.insert(0, HERE)

from hnsw_peers import ADAPTERS, Dataset, data_dir, dataset_names, log, machine_info  # noqa: E402

SYSTEMS = ("hnswlib", "faiss", "usearch", "nearest")
K = 10
EF = 10


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="folder of datasets (default: $NEAREST_DATA, else ../shared/data next to the repository)")
    parser.add_argument("--dataset", action="append", default=[], help="a dataset folder name; repeat for several (default: all)")
    parser.add_argument("--nearest", help="the `nearest` binary (default: .build/release/nearest if it exists)")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--repetitions", type=int, default=5, help="samples per measurement; the median counts")
    parser.add_argument("--no-cold", action="store_true", help="warm page cache only")
    parser.add_argument("--work-dir", default="/tmp/nearest-persistence", help="where the index files go (removed after)")
    parser.add_argument("--keep-files", action="store_true")
    parser.add_argument("--tables", nargs="+", metavar="JSON", help="only print the Markdown tables of result files")
    parser.add_argument("--results-dir", default=os.path.join(BENCHMARKS, "results"))
    args = parser.parse_args(argv)
    if not args.nearest:
        default = os.path.join(REPOSITORY, ".build", "release", "nearest")
        args.nearest = default if os.path.exists(default) else None
    # What hnsw_peers' adapters read from args.
    args.k = K
    return args


# ---------------------------------------------------------------------------------------------
# Page cache and memory


def evict(path):
    """Drops the file's pages from the page cache; returns the bytes still resident (fincore)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return resident_bytes(path)


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def resident_bytes(path):
    if not shutil.which("fincore"):
        return None
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", path],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        return int(out.stdout.split()[0])
    except (IndexError, ValueError):
        return None


def rss():
    """(RssAnon, RssFile) of this process in bytes."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                key, value, _ = line.split()
                values[key[:-1]] = int(value) * 1024
    return values.get("RssAnon", 0), values.get("RssFile", 0)


def mapped_in_process(path):
    real = os.path.realpath(path)
    with open("/proc/self/maps") as f:
        return any(line.rstrip("\n").endswith(real) for line in f)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ---------------------------------------------------------------------------------------------
# Peers


def peer_variants(name, d, metric_name, path):
    """[(variant, mapped_api, open() -> index, search(index, q) -> ids)] for one peer."""
    if name == "hnswlib":
        import hnswlib
        space = "ip" if metric_name == "ip" else "l2"

        def load():
            index = hnswlib.Index(space=space, dim=d)
            index.load_index(path)
            index.set_ef(EF)
            return index

        def search(index, q):
            return index.knn_query(q, k=K, num_threads=1)[0][0].astype(np.int64)

        return [("load_index", False, load, search)]
    if name == "faiss":
        import faiss

        def reader(flags):
            def read():
                index = faiss.read_index(path, flags) if flags else faiss.read_index(path)
                index.hnsw.efSearch = EF
                return index
            return read

        def search(index, q):
            faiss.omp_set_num_threads(1)
            return index.search(q.reshape(1, -1), K)[1][0].astype(np.int64)

        return [("read_index", False, reader(0), search),
                ("read_index(IO_FLAG_MMAP)", True, reader(faiss.IO_FLAG_MMAP), search),
                ("read_index(IO_FLAG_MMAP_IFC)", True, reader(faiss.IO_FLAG_MMAP_IFC), search)]
    if name == "usearch":
        from usearch.index import Index
        metric = "ip" if metric_name == "ip" else "l2sq"

        def opener(view):
            def open_():
                index = Index(ndim=d, metric=metric, dtype="f32", connectivity=16, expansion_search=EF)
                (index.view if view else index.load)(path)
                index.expansion_search = EF
                return index
            return open_

        def search(index, q):
            return np.asarray(index.search(q, K, threads=1).keys).astype(np.int64)

        return [("load", False, opener(False), search), ("view", True, opener(True), search)]
    raise ValueError(name)


def peer_save(name, index, path):
    if name == "hnswlib":
        index.save_index(path)
    elif name == "faiss":
        import faiss
        faiss.write_index(index, path)
    else:
        index.save(path)


def fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def child_main(spec):
    """One sample in a fresh process: the library is imported and the query read first, then
    open + one search are timed; prints JSON (timings, memory growth, the ids found)."""
    spec = json.loads(spec)
    with open(spec["queries"], "rb") as f:
        dim = int(np.frombuffer(f.read(4), dtype=np.int32)[0])
        q = np.frombuffer(f.read(4 * dim), dtype=np.float32).copy()
    variants = {v: (o, s) for v, _, o, s in peer_variants(spec["system"], dim, spec["metric"], spec["path"])}
    opener, search = variants[spec["variant"]]
    anon0, file0 = rss()
    t0 = time.perf_counter()
    index = opener()
    t1 = time.perf_counter()
    ids = search(index, q)
    t2 = time.perf_counter()
    anon1, file1 = rss()
    print(json.dumps({"open_seconds": t1 - t0, "query_seconds": t2 - t1, "first_query_seconds": t2 - t0,
                      "rss_anon_delta": anon1 - anon0, "rss_file_delta": file1 - file0,
                      "rss_delta": anon1 + file1 - anon0 - file0, "file_in_maps": mapped_in_process(spec["path"]),
                      "ids": [int(i) for i in ids]}))
    return 0


def open_sample(system, variant, data, path):
    spec = {"system": system, "variant": variant, "path": path, "metric": data.metric,
            "queries": os.path.join(data.path, "query.fvecs")}
    _, report, _ = run_measured([sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)])
    return report


def run_peer(name, data, args, folder):
    adapter = ADAPTERS[name](data, args)
    q = data.queries[0]
    path = os.path.join(folder, f"{name}.index")
    log(f"  {name}: build on {args.build_threads} threads")
    t = time.perf_counter()
    index = adapter.build(args.build_threads)
    build_seconds = time.perf_counter() - t
    adapter.set_ef(index, EF)
    variants = peer_variants(name, data.base.shape[1], data.metric, path)
    reference = [int(i) for i in variants[0][3](index, q)]
    saves, fsyncs = [], []
    for _ in range(args.repetitions):
        if os.path.exists(path):
            os.remove(path)
        t = time.perf_counter()
        peer_save(name, index, path)
        saves.append(time.perf_counter() - t)
        t = time.perf_counter()
        fsync_file(path)
        fsyncs.append(time.perf_counter() - t)
    del index
    gc.collect()
    size = os.path.getsize(path)
    record = {"system": name, "build_seconds": build_seconds, "build_threads": args.build_threads,
              "file_bytes": size, "bytes_per_vector": size / len(data.base),
              "save_seconds": saves, "fsync_seconds": fsyncs,
              "save_and_fsync_seconds": [a + b for a, b in zip(saves, fsyncs)], "variants": []}
    for variant, mapped_api, opener, search in variants:
        entry = {"variant": variant, "mapped_api": mapped_api}
        try:
            warm(path)
            open_sample(name, variant, data, path)  # warm-up (page cache, imports), not counted
        except RuntimeError as error:  # the child failed: report what the library said
            entry["error"] = f"{type(error).__name__}: {error}"
            record["variants"].append(entry)
            log(f"    {variant}: {entry['error']}")
            continue
        caches = ("warm",) if args.no_cold else ("warm", "cold")
        for cache in caches:
            entry[cache] = []
        for _ in range(args.repetitions):
            for cache in caches:
                residue = evict(path) if cache == "cold" else (warm(path) or None)
                sample = open_sample(name, variant, data, path)
                sample["same_answer"] = sample.pop("ids") == reference
                if cache == "cold":
                    sample["resident_bytes_before"] = residue
                entry[cache].append(sample)
        samples = [s for c in caches for s in entry[c]]
        # Really mapped: the file is in the process's maps and its anonymous memory did not grow
        # by anything like the file's size.
        entry["maps_file"] = all(s["file_in_maps"] for s in samples) and \
            median([s["rss_anon_delta"] for s in samples]) < 0.5 * size
        entry["same_answer"] = all(s["same_answer"] for s in samples)
        record["variants"].append(entry)
        log(f"    {variant}: open {median([s['open_seconds'] for s in entry['warm']]) * 1e3:.2f} ms warm"
            + (f", {median([s['open_seconds'] for s in entry['cold']]) * 1e3:.2f} ms cold" if "cold" in entry else "")
            + f"; maps the file: {entry['maps_file']}")
    if not args.keep_files:
        os.remove(path)
    return record


# ---------------------------------------------------------------------------------------------
# swift-nearest


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run_measured(command, peak=False):
    """(wall seconds, JSON stdout, peak RSS bytes or None) of one run. The peak RSS comes from GNU
    time's %M (its fork of a small process, not of this one: a child forked or vforked from this
    Python process reports this process's RSS as its own peak, since exec keeps the old mm's
    high-water mark in ru_maxrss)."""
    scratch = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"persistence-peers-{os.getpid()}")
    if peak and TIME:
        command = [TIME, "-f", "%M", "-o", scratch + ".rss"] + command
    read, write = os.pipe()
    actions = [(os.POSIX_SPAWN_DUP2, write, 1), (os.POSIX_SPAWN_CLOSE, read),
               (os.POSIX_SPAWN_OPEN, 2, scratch + ".err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
    t = time.perf_counter()
    pid = os.posix_spawn(command[0], command, os.environ, file_actions=actions)
    os.close(write)
    chunks = []
    while True:
        chunk = os.read(read, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    wall = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        with open(scratch + ".err") as f:
            message = f.read()[-1500:].strip()
        raise RuntimeError(f"exit {code}: {message}")
    rss_bytes = None
    if peak and TIME:
        with open(scratch + ".rss") as f:
            rss_bytes = int(f.read().split()[-1]) * 1024
    return wall, json.loads(b"".join(chunks).decode()), rss_bytes


def write_fvecs(path, vectors):
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    rows = np.empty((vectors.shape[0], vectors.shape[1] + 1), dtype=np.float32)
    rows[:, 0] = np.array([vectors.shape[1]], dtype=np.int32).view(np.float32)
    rows[:, 1:] = vectors
    rows.tofile(path)


def run_nearest(data, args, folder):
    binary = os.path.abspath(args.nearest)
    path = os.path.join(folder, "nearest.index")
    query1 = os.path.join(folder, "query1.fvecs")
    write_fvecs(query1, data.queries[:1])
    metric = "cosine" if data.metric == "ip" else "l2"
    base = os.path.join(data.path, "base.fvecs")
    build = [binary, "build", "--base", base, "--metric", metric, "--m", str(args.m),
             "--ef-construction", str(args.ef_construction), "--threads", str(args.build_threads),
             "--seed", str(args.seed), "--output", path, "--json"]
    log(f"  nearest: build on {args.build_threads} threads")
    wall, report, _ = run_measured(build)
    size = os.path.getsize(path)
    record = {"system": "nearest", "build_seconds": report["seconds"], "build_threads": report["threads"],
              "build_command": " ".join(build[1:]), "file_bytes": size, "bytes_per_vector": size / len(data.base),
              "save_seconds": [report["save_seconds"]], "save_and_fsync_seconds": [report["save_seconds"]],
              "save_includes": "temporary file, fsync, rename, directory fsync, two CRC32C passes",
              "variants": []}
    baseline_command = [binary, "info", "--json"]
    run_measured(baseline_command, peak=True)
    caches = ("warm",) if args.no_cold else ("warm", "cold")
    variants = [("search (load)", False, [binary, "search", "--index", path, "--queries", query1, "--ef", str(EF),
                                           "--k", str(K), "--threads", "1", "--json"]),
                ("search --mmap", True, [binary, "search", "--index", path, "--mmap", "--queries", query1,
                                         "--ef", str(EF), "--k", str(K), "--threads", "1", "--json"]),
                ("info (mapped view)", True, [binary, "info", path, "--json"])]
    entries = [{"variant": v, "mapped_api": m, "command": " ".join(c[1:]), **{cache: [] for cache in caches}}
               for v, m, c in variants]
    baseline = []
    for (_, _, command), entry in zip(variants, entries):
        warm(path)
        run_measured(command)  # warm-up, not counted
    for _ in range(args.repetitions):
        wall, _, peak = run_measured(baseline_command, peak=True)
        baseline.append({"wall_seconds": wall, "peak_rss": peak})
        for (_, _, command), entry in zip(variants, entries):
            for cache in caches:
                residue = evict(path) if cache == "cold" else (warm(path) or None)
                wall, report, peak = run_measured(command, peak=True)
                sample = {"wall_seconds": wall, "peak_rss": peak, "open_seconds": report["open_seconds"]}
                if "results" in report:
                    qps = report["results"][0]["qps"]
                    sample["query_seconds"] = 1 / qps
                    sample["first_query_seconds"] = report["open_seconds"] + 1 / qps
                if cache == "cold":
                    sample["resident_bytes_before"] = residue
                entry[cache].append(sample)
    base_wall = median([b["wall_seconds"] for b in baseline])
    base_rss = median([b["peak_rss"] for b in baseline])
    for entry in entries:
        for cache in caches:
            for sample in entry[cache]:
                sample["wall_minus_process_start"] = sample["wall_seconds"] - base_wall
                sample["peak_rss_over_baseline"] = None if base_rss is None else sample["peak_rss"] - base_rss
        entry["maps_file"] = entry["mapped_api"]
        log(f"    {entry['variant']}: open {median([s['open_seconds'] for s in entry['warm']]) * 1e3:.2f} ms warm"
            + (f", {median([s['open_seconds'] for s in entry['cold']]) * 1e3:.2f} ms cold" if "cold" in entry else ""))
    record["variants"] = entries
    record["process_start"] = {"command": " ".join(baseline_command[1:]), "samples": baseline,
                               "wall_seconds": base_wall, "peak_rss": base_rss}
    if not args.keep_files:
        os.remove(path)
    return record


# ---------------------------------------------------------------------------------------------
# Tables


NAMES = {"hnswlib": "hnswlib", "faiss": "FAISS", "usearch": "USearch", "nearest": "swift-nearest"}


def variant_value(record, mapped, cache, key):
    """Median of `key` for the system's loaded (mapped=False) or truly mapped variant."""
    for entry in record["variants"]:
        if "error" in entry or cache not in entry:
            continue
        if entry["mapped_api"] == mapped and (not mapped or entry["maps_file"]) and \
                any(key in s for s in entry[cache]):
            return median([s.get(key) for s in entry[cache]]), entry["variant"]
    return None, None


def fmt_seconds(v):
    if v is None:
        return "—"
    return f"{v * 1e3:.3f} ms" if v < 0.01 else f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s"


def fmt_bytes(v):
    return "—" if v is None else f"{v:,.0f}"


def fmt_mib(v):
    return "—" if v is None else f"{v / 2**20:.1f} MiB"


def markdown(results):
    records = {r["system"]: r for r in results["systems"]}
    order = [s for s in SYSTEMS if s in records]
    caches = results.get("caches", ["warm"])
    lines = []
    d = results["dataset"]
    lines.append(f"### {d['name']} ({d['base']:,} × {d['dimensions']}, {d['metric']}), "
                 f"M = {results['M']}, efConstruction = {results['ef_construction']}")
    lines.append("")
    header = "| | " + " | ".join(NAMES[s] for s in order) + " | best peer | swift-nearest ÷ best peer |"
    lines.append(header)
    lines.append("|---" * (len(order) + 3) + "|")

    def row(label, values, fmt, lower_is_better=True):
        peers = [values[s] for s in order if s != "nearest" and values.get(s) is not None]
        best = (min(peers) if lower_is_better else max(peers)) if peers else None
        ours = values.get("nearest")
        ratio = f"{ours / best:.2f}" if ours is not None and best else "—"
        cells = [fmt(values.get(s)) for s in order]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {fmt(best)} | {ratio} |")

    row("file size (bytes)", {s: records[s]["file_bytes"] for s in order}, fmt_bytes)
    row("bytes per vector", {s: records[s]["bytes_per_vector"] for s in order}, lambda v: "—" if v is None else f"{v:,.1f}")
    row("save (library call)", {s: median(records[s]["save_seconds"]) for s in order}, fmt_seconds)
    row("save + fsync", {s: median(records[s]["save_and_fsync_seconds"]) for s in order}, fmt_seconds)
    for mapped in (False, True):
        kind = "mapped open" if mapped else "full load"
        for cache in caches:
            row(f"{kind}, {cache}", {s: variant_value(records[s], mapped, cache, "open_seconds")[0] for s in order},
                fmt_seconds)
        for cache in caches:
            row(f"{kind} + first query, {cache}",
                {s: variant_value(records[s], mapped, cache, "first_query_seconds")[0] for s in order}, fmt_seconds)
        for cache in (caches if mapped else caches[:1]):
            mem = {}
            for s in order:
                key = "peak_rss_over_baseline" if s == "nearest" else "rss_delta"
                mem[s] = variant_value(records[s], mapped, cache, key)[0]
            row(f"{kind}: memory{' (any cache)' if not mapped else ', ' + cache} ¹", mem, fmt_mib)
    lines.append("")
    lines.append("¹ peers: RSS growth (RssAnon + RssFile) of a fresh process from before the open to after the "
                 "first query; swift-nearest: peak RSS of the run minus that of `nearest info` (a full load maps "
                 "the file and copies it, so its peak holds both). Mapped variants with a warm cache count every "
                 "cached page the kernel maps around a fault (whole large folios left by a sequential read), so "
                 "the cold row is the one that shows what a query really reads.")
    lines.append("")
    notes = []
    for s in order:
        used = []
        for entry in records[s]["variants"]:
            if "error" in entry:
                used.append(f"`{entry['variant']}`: error {entry['error']}")
            elif entry["mapped_api"] and not entry["maps_file"]:
                used.append(f"`{entry['variant']}`: does not map the file (reads it into memory), left out of the mapped rows")
        if used:
            notes.append(f"- {NAMES[s]}: " + "; ".join(used))
    if notes:
        lines.extend(notes)
        lines.append("")
    ours = records.get("nearest")
    if ours:
        lines.append(f"swift-nearest whole-process wall time (median; process start = `{ours['process_start']['command']}`, "
                     f"{fmt_seconds(ours['process_start']['wall_seconds'])}):")
        lines.append("")
        lines.append("| command | " + " | ".join(f"wall, {c}" for c in caches) + " | "
                     + " | ".join(f"wall − process start, {c}" for c in caches) + " | "
                     + " | ".join(f"open_seconds, {c}" for c in caches) + " |")
        lines.append("|---" * (1 + 3 * len(caches)) + "|")
        for entry in ours["variants"]:
            walls = [fmt_seconds(median([s["wall_seconds"] for s in entry[c]])) for c in caches]
            net = [fmt_seconds(median([s["wall_minus_process_start"] for s in entry[c]])) for c in caches]
            opens = [fmt_seconds(median([s["open_seconds"] for s in entry[c]])) for c in caches]
            lines.append(f"| `nearest {entry['command'].split(' ')[0]}{' --mmap' if '--mmap' in entry['command'] else ''}"
                         f"{' F' if entry['command'].startswith('info') else ''}` | "
                         + " | ".join(walls + net + opens) + " |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def main(argv):
    if argv[:1] == ["--child"]:
        return child_main(argv[1])
    args = parse_arguments(argv)
    if args.tables:
        for path in args.tables:
            with open(path) as f:
                print(markdown(json.load(f)) + "\n")
        return 0
    folder = data_dir(args)
    names = dataset_names(folder, args.dataset)
    os.makedirs(args.results_dir, exist_ok=True)
    machine = machine_info(["hnswlib", "faiss", "usearch"])
    for name in names:
        data = Dataset(folder, name, 0)
        log(f"{name}: {data.base.shape[0]:,} x {data.base.shape[1]}, {data.metric}")
        work = os.path.join(args.work_dir, name)
        os.makedirs(work, exist_ok=True)
        results = {"benchmark": "persistence", "dataset": data.describe(), "M": args.m,
                   "ef_construction": args.ef_construction, "k": K, "ef": EF, "repetitions": args.repetitions,
                   "statistic": "median", "caches": ["warm"] if args.no_cold else ["warm", "cold"],
                   "cold_cache_method": "fsync + posix_fadvise(POSIX_FADV_DONTNEED) of the index file, checked with fincore",
                   "machine": dict(machine, load_average_before=" ".join(f"{v:.2f}" for v in os.getloadavg())),
                   "command": " ".join([os.path.relpath(os.path.abspath(sys.argv[0]), REPOSITORY)] + argv),
                   "systems": []}
        for system in ("hnswlib", "faiss", "usearch"):
            results["systems"].append(run_peer(system, data, args, work))
        if args.nearest:
            results["systems"].append(run_nearest(data, args, work))
        results["machine"]["load_average_after"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
        if not args.keep_files:
            shutil.rmtree(work, ignore_errors=True)
        for suffix in (".err", ".rss"):
            scratch = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"persistence-peers-{os.getpid()}{suffix}")
            if os.path.exists(scratch):
                os.remove(scratch)
        path = os.path.join(args.results_dir, f"persistence-{name}.json")
        with open(path, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
        log(f"wrote {path}")
        print(markdown(results), flush=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
