#!/usr/bin/env python3
"""Exact (flat) search: swift-nearest against FAISS IndexFlat and NumPy in one process, interleaved.

    python3 Benchmarks/interleaved/interleaved_flat.py                    # every dataset, 1 and 2 threads
    python3 Benchmarks/interleaved/interleaved_flat.py --dataset siftsmall --threads 1 --rounds 7

The flat counterpart of interleaved.py, for the same reason: run-flat.sh measures our side and
then the peers' in another process minutes later, and on this shared VM that moves ratios near 1
by ±30%. Here, per thread count, one process holds all three (the thread count is fixed in the
environment before NumPy and FAISS load their OpenBLAS, so each count is a subprocess); each round
times every batch size for every library, the order rotating per round, each timing repeating
whole batches of the query set for --min-seconds; each cell keeps its fastest round.

swift-nearest: its C core through ctypes (nearest_shim.c), filled and calibrated as `FlatIndex`
does, one nn_flat_search per batch on a pool of that many threads (the automatic path: SIMD or
sgemm by the index's measured threshold). FAISS and NumPy: as peers/flat_peers.py calls them.
Recall@10 is checked against the ground truth for every library (ties counted as flat_peers does).

Writes results/interleaved-flat.json and .md and prints the ratios ours ÷ FAISS and ours ÷ NumPy.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(BENCHMARKS, "peers"))
sys.path.insert(0, HERE)
from shim import METRICS, load_shim  # noqa: E402  (no NumPy or BLAS: safe before the thread counts are set)

LIBRARIES = ("swift-nearest", "faiss", "numpy")


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="folder of datasets (default: $NEAREST_DATA, else ../shared/data)")
    parser.add_argument("--dataset", action="append", default=[], help="a dataset folder name; repeat (default: all)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batches", default="1,16,256,all")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=0.3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--results-dir", default=os.path.join(BENCHMARKS, "results"))
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


class NearestSearch:
    def __init__(self, np, shim, data, threads):
        self.np, self.shim = np, shim
        base = np.ascontiguousarray(data.base, dtype=np.float32)
        self.handle = shim.shim_flat_build(base.ctypes.data, base.shape[0], base.shape[1], METRICS[data.metric],
                                           threads)
        if not self.handle:
            sys.exit("swift-nearest: building the flat index failed")

    def __call__(self, queries, k):
        np = self.np
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        labels = np.empty((queries.shape[0], k), dtype=np.int64)
        distances = np.empty((queries.shape[0], k), dtype=np.float32)
        if self.shim.shim_flat_search(self.handle, queries.ctypes.data, queries.shape[0], queries.shape[1], k,
                                      labels.ctypes.data, distances.ctypes.data):
            sys.exit("swift-nearest: search failed")
        return labels


def timed(search, queries, batch, k, min_seconds):
    """Queries/s over whole batches of the query set, repeated until min_seconds; and the ids."""
    batches = max(1, queries.shape[0] // batch)
    done, ids, t0 = 0, [], time.perf_counter()
    while True:
        for b in range(batches):
            found = search(queries[b * batch:(b + 1) * batch], k)
            if len(ids) < batches:
                ids.append(found)
        done += batches * batch
        seconds = time.perf_counter() - t0
        if seconds >= min_seconds:
            return done / seconds, ids


def worker(args):
    import numpy as np  # after the parent fixed the thread counts in the environment
    import faiss
    from flat_peers import FaissSearch, NumpySearch, load_dataset, recall

    threads = args.worker
    faiss.omp_set_num_threads(threads)
    shim = load_shim()
    out = []
    for name in args.dataset:
        data = load_dataset(np, args.data_dir, name, 0)
        searchers = {"swift-nearest": NearestSearch(np, shim, data, threads), "faiss": FaissSearch(np, faiss, data),
                     "numpy": NumpySearch(np, data)}
        batches = []
        for label in args.batches.split(","):
            batch = data.queries.shape[0] if label == "all" else int(label)
            if label == "all" or batch < data.queries.shape[0]:
                batches.append((label, batch))
        best, recalls = {}, {}
        for round_ in range(args.rounds):
            order = LIBRARIES[round_ % 3:] + LIBRARIES[:round_ % 3]
            for label, batch in batches:
                for library in order:
                    qps, ids = timed(searchers[library], data.queries, batch, args.k, args.min_seconds)
                    best[library, label] = max(best.get((library, label), 0.0), qps)
                    if round_ == 0:
                        recalls[library, label] = recall(np, data, ids, args.k)
            print(f"  {name}, {threads} thread(s): round {round_ + 1}/{args.rounds}", file=sys.stderr, flush=True)
        for label, _ in batches:
            out.append({"dataset": name, "threads": threads, "batch": label,
                        "qps": {lib: best[lib, label] for lib in LIBRARIES},
                        "recall": {lib: recalls[lib, label] for lib in LIBRARIES}})
    json.dump(out, sys.stdout)


def main(argv):
    args = parse_arguments(argv)
    from flat_peers import data_dir, dataset_names
    args.data_dir = data_dir(args)
    if args.worker:
        return worker(args)
    args.dataset = dataset_names(args.data_dir, args.dataset)
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        command = [sys.executable, os.path.abspath(__file__), "--worker", str(threads), "--data-dir", args.data_dir,
                   "--batches", args.batches, "--rounds", str(args.rounds), "--min-seconds", str(args.min_seconds),
                   "--k", str(args.k)] + [a for d in args.dataset for a in ("--dataset", d)]
        result = subprocess.run(command, env=env, stdout=subprocess.PIPE, check=True, text=True)
        rows += json.loads(result.stdout)
    lines = ["| dataset | threads | batch | swift-nearest q/s | FAISS q/s | NumPy q/s | **÷ FAISS** | ÷ NumPy | recall@10 counting ties (ours / FAISS / NumPy) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        q, rec = r["qps"], r["recall"]
        recall_text = " / ".join(f"{rec[lib]['with_ties']:.4f}"
                                 for lib in LIBRARIES)
        lines.append(f"| {r['dataset']} | {r['threads']} | {r['batch']} | {q['swift-nearest']:,.0f} | {q['faiss']:,.0f} | "
                     f"{q['numpy']:,.0f} | **{q['swift-nearest'] / q['faiss']:.2f}** | "
                     f"{q['swift-nearest'] / q['numpy']:.2f} | {recall_text} |")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = (f"# Interleaved flat comparison\n\n`Benchmarks/interleaved/interleaved_flat.py` ({args.rounds} rounds, "
            f"k = {args.k}, each timing ≥ {args.min_seconds} s); {os.cpu_count()} cores; run {stamp}. Queries/s of "
            "whole batches; each cell the fastest of its rounds, the libraries taking turns.\n\n" + "\n".join(lines) + "\n")
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, "interleaved-flat.json"), "w") as f:
        json.dump({"run_at": stamp, "rounds": args.rounds, "k": args.k, "rows": rows}, f, indent=1)
    with open(os.path.join(args.results_dir, "interleaved-flat.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
