#!/usr/bin/env python3
"""Search p99 while a bulk upsert runs, by indexing threshold: how the default was chosen.

Builds the MiniLM collection (as run-filtered.py does) once per threshold, then in alternating
rounds times 500 unfiltered queries idle, and again while 20,000 points are upserted 1,000 a
call, until the graph has taken them (`nearest-bench collection --upsert-during`). Needs the
work directory run-filtered.py leaves (its payloads file).

    python3 Benchmarks/collections/run-upsert-p99.py [--thresholds 1024,1365,1536,2048] [--rounds 2]
"""
import argparse, importlib.util, json, os

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("filtered", os.path.join(HERE, "run-filtered.py"))
filtered = importlib.util.module_from_spec(spec)
spec.loader.exec_module(filtered)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--thresholds", default="1024,1365,1536,2048")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(filtered.ROOT, "Benchmarks", "results", "collection-upsert-p99.json"))
    args = parser.parse_args()
    work = os.path.join(filtered.tempfile.gettempdir(), "nearest-filtered-bench")
    payloads = os.path.join(work, "payloads.jsonl")
    if not os.path.exists(payloads):
        raise SystemExit(f"{payloads} is missing: run run-filtered.py once first")
    nearest = os.path.join(filtered.ROOT, ".build", "release", "nearest")
    bench = os.path.join(filtered.ROOT, "Benchmarks", ".build", "release", "nearest-bench")
    queries = os.path.join(filtered.DATA, "query.fvecs")
    directories = {}
    for threshold in map(int, args.thresholds.split(",")):
        directories[threshold], _, _ = filtered.build_ours(nearest, work, payloads, indexing_threshold=threshold,
                                                           name=f"ours-{threshold}")
    results = []
    for r in range(args.rounds):
        for threshold, directory in directories.items():
            run = filtered.round_ours(bench, directory, queries, 500, work, 20000, only_unfiltered=True)
            idle, during = filtered.summary(run["filters"]["none"]["seconds"]), filtered.summary(run["duringUpsert"]["seconds"])
            row = {"round": r + 1, "threshold": threshold, "idle_p99_ms": idle["p99_ms"], "during_p99_ms": during["p99_ms"],
                   "ratio": during["p99_ms"] / idle["p99_ms"], "upsert_seconds": run["upsertSeconds"],
                   "settled_seconds": run["settledSeconds"]}
            results.append(row)
            print(f"round {r + 1}, threshold {threshold}: p99 {during['p99_ms']:.2f} ms during, {idle['p99_ms']:.2f} idle "
                  f"({row['ratio']:.2f}x); upsert {row['upsert_seconds']:.1f} s, indexed after {row['settled_seconds']:.1f} s",
                  flush=True)
    json.dump(results, open(args.out, "w"), indent=2)


if __name__ == "__main__":
    main()
