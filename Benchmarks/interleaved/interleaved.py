#!/usr/bin/env python3
"""swift-nearest against hnswlib, FAISS IndexHNSWFlat and USearch in one process, interleaved.

    python3 Benchmarks/interleaved/interleaved.py                       # every dataset, 5 rounds
    python3 Benchmarks/interleaved/interleaved.py --dataset debian-minilm-384-angular --rounds 7

Why: run.sh measures our sweep and then the peers' minutes later, and this VM's speed drifts by
20-40% over minutes, so a slow spell on one side moves a ratio by as much as the goal itself.
Here every library's index lives in one Python process and the timings take turns: each round
times every ef for every library (the query set repeated for --min-seconds), the libraries' order rotating from round to round, and each
point keeps its fastest round. A slow spell then hits all libraries alike.

swift-nearest runs through its C core, built here into a shared library with the flags of a
SwiftPM release build (-O2, no -march) and called through ctypes (nearest_shim.c): the same
nn_hnsw_add and one nn_hnsw_search per query that `HNSWIndex.searchSequentially` calls. The
peers run through their Python bindings exactly as peers/hnsw_peers.py runs them (its adapters),
one thread, all queries in one call through each library's own loop. Every index is built with
--build-threads (default 2, as run.sh's sweep) and M = 16, efConstruction = 200.

Writes results/interleaved-<dataset>.json and results/interleaved.md, and prints the table:
single-thread queries/s interpolated at recall@10 = 0.90 / 0.95 / 0.99 (hnsw_peers.at_recall)
and at ef = 10, and swift-nearest's ratio to the best peer at each.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "peers"))
sys.path.insert(0, HERE)
from shim import METRICS, load_shim  # noqa: E402
from hnsw_peers import (BENCHMARKS, TARGETS, Dataset, FaissAdapter, HnswlibAdapter,  # noqa: E402
                        UsearchAdapter, at_recall, data_dir, dataset_names, recall)

OURS = "swift-nearest"
PEERS = {"hnswlib": HnswlibAdapter, "faiss": FaissAdapter, "usearch": UsearchAdapter}
DEFAULT_EF = "10,16,20,24,32,40,48,64,80,128"


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="folder of datasets (default: $NEAREST_DATA, else ../shared/data)")
    parser.add_argument("--dataset", action="append", default=[], help="a dataset folder name; repeat (default: all)")
    parser.add_argument("--libraries", default="hnswlib,faiss,usearch", help="peers, comma-separated")
    parser.add_argument("--ef", default=DEFAULT_EF, help=f"comma-separated ef values (default {DEFAULT_EF})")
    parser.add_argument("--rounds", type=int, default=5, help="rounds over every (ef, library); the fastest counts")
    parser.add_argument("--min-seconds", type=float, default=0.25,
                        help="one timing repeats the query set until this much time has passed")
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--max-queries", type=int, default=0, help="use only the first N queries (0: all)")
    parser.add_argument("--results-dir", default=os.path.join(BENCHMARKS, "results"))
    return parser.parse_args(argv)


class NearestAdapter:
    """swift-nearest through the shim, with the peers' adapter interface."""
    name = OURS

    def __init__(self, data, args, shim):
        self.data, self.args, self.shim = data, args, shim
        # Angular sets: the peers take inner product on unit vectors, we take cosine (as nearest-bench).
        self.metric = METRICS["cosine" if data.metric == "ip" else "l2"]
        self.ef = 10
        self.distances = 0.0

    def build(self, threads):
        base = np.ascontiguousarray(self.data.base, dtype=np.float32)
        n, d = base.shape
        index = self.shim.shim_build(base.ctypes.data, n, d, self.metric, self.args.m, self.args.ef_construction,
                                     threads)
        if not index:
            sys.exit("swift-nearest: the build failed")
        return index

    def set_ef(self, index, ef):
        self.ef = ef

    def search_batch(self, index, queries, k, threads=1):
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        labels = np.empty((len(queries), k), dtype=np.int64)
        work = self.shim.shim_search(index, queries.ctypes.data, len(queries), queries.shape[1], k, self.ef,
                                     labels.ctypes.data)
        self.distances = work / len(queries)
        return labels


def run_dataset(name, args, shim):
    data = Dataset(data_dir(args), name, args.max_queries)
    efs = [int(e) for e in args.ef.split(",")]
    adapters = [NearestAdapter(data, args, shim)] + [PEERS[p](data, args) for p in args.libraries.split(",") if p]
    print(f"{data.name}: {data.base.shape[0]:,} x {data.base.shape[1]}, {len(data.queries):,} queries, "
          f"{data.metric}", flush=True)
    indexes, builds = {}, {}
    for adapter in adapters:
        t0 = time.perf_counter()
        indexes[adapter.name] = adapter.build(args.build_threads)
        builds[adapter.name] = time.perf_counter() - t0
        print(f"  built {adapter.name} on {args.build_threads} threads in {builds[adapter.name]:.2f} s", flush=True)

    best = {(a.name, ef): float("inf") for a in adapters for ef in efs}
    found_recall, distances = {}, {}
    for round_ in range(args.rounds):
        order = adapters[round_ % len(adapters):] + adapters[:round_ % len(adapters)]
        for ef in efs:
            for adapter in order:
                index = indexes[adapter.name]
                adapter.set_ef(index, ef)
                passes, t0 = 0, time.perf_counter()
                while True:
                    labels = adapter.search_batch(index, data.queries, args.k, threads=1)
                    passes += 1
                    seconds = time.perf_counter() - t0
                    if seconds >= args.min_seconds:
                        break
                best[adapter.name, ef] = min(best[adapter.name, ef], seconds / passes)
                if round_ == 0:
                    found_recall[adapter.name, ef] = recall(labels, data.truth, args.k)
                    if adapter.name == OURS:
                        distances[ef] = adapter.distances
        print(f"  round {round_ + 1}/{args.rounds} done", flush=True)

    runs = []
    for adapter in adapters:
        rows = [{"ef": ef, "recall": found_recall[adapter.name, ef], "qps": len(data.queries) / best[adapter.name, ef]}
                for ef in efs]
        if adapter.name == OURS:
            for row in rows:
                row["distance_computations"] = distances[row["ef"]]
        runs.append({"library": adapter.name, "build_seconds": builds[adapter.name], "sweep": rows,
                     "at_recall": at_recall(rows, "qps")})
    result = {"dataset": data.describe(), "rounds": args.rounds, "build_threads": args.build_threads,
              "m": args.m, "ef_construction": args.ef_construction, "k": args.k,
              "machine": platform_line(), "runs": runs,
              "run_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, f"interleaved-{data.name}.json"), "w") as f:
        json.dump(result, f, indent=1)
    return result


def platform_line():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"


def qps_at(run, target):
    entry = run["at_recall"][f"{target:.2f}"]
    return None if entry is None else (entry["value"], entry["at_first_ef"])


def markdown(results):
    lines = ["| dataset | library | " + " | ".join(f"q/s @{t:.2f}" for t in TARGETS) + " | q/s at ef = 10 | recall at ef = 10 |",
             "|---|---|" + "---:|" * (len(TARGETS) + 2)]
    ratio_lines = ["| dataset | " + " | ".join(f"@{t:.2f}" for t in TARGETS) + " | at ef = 10 |",
                   "|---|" + "---:|" * (len(TARGETS) + 1)]
    for result in results:
        name = result["dataset"]["name"]
        runs = result["runs"]
        for run in runs:
            cells = []
            for t in TARGETS:
                v = qps_at(run, t)
                cells.append("–" if v is None else ("≥" if v[1] else "") + f"{v[0]:,.0f}")
            first = run["sweep"][0]
            label = f"**{run['library']}**" if run["library"] == OURS else run["library"]
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + f" | {first['qps']:,.0f} | {first['recall']:.4f} |")
        ours, peers = runs[0], runs[1:]
        cells = []
        for t in TARGETS:
            mine = qps_at(ours, t)
            theirs = [(qps_at(p, t), p["library"]) for p in peers]
            theirs = [(v[0], lib) for v, lib in theirs if v is not None and not v[1]]
            if mine is None or mine[1] or not theirs:
                cells.append("–")
            else:
                value, lib = max(theirs)
                cells.append(f"{mine[0] / value:.2f}× ({lib})")
        value, lib = max((p["sweep"][0]["qps"], p["library"]) for p in peers)
        cells.append(f"{ours['sweep'][0]['qps'] / value:.2f}× ({lib})")
        ratio_lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines), "\n".join(ratio_lines)


def main(argv):
    args = parse_arguments(argv)
    shim = load_shim()
    names = dataset_names(data_dir(args), args.dataset)
    results = [run_dataset(name, args, shim) for name in names]
    table, ratios = markdown(results)
    text = (f"# Interleaved comparison\n\n`Benchmarks/interleaved/interleaved.py` ({results[0]['rounds']} rounds, "
            f"indexes built on {args.build_threads} threads, M = {args.m}, efConstruction = {args.ef_construction}, "
            f"k = {args.k}); {platform_line()}; run {results[0]['run_at']}.\n\n"
            "Single-thread queries/s, each library's own query loop, interpolated along the ef sweep at recall@10 "
            "('≥': the smallest ef already exceeds it, so no ratio is taken there).\n\n"
            f"{table}\n\n**swift-nearest ÷ best peer** (single thread):\n\n{ratios}\n")
    with open(os.path.join(args.results_dir, "interleaved.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
