#!/usr/bin/env python3
"""Filtered search in the store: swift-nearest's VectorCollection against Qdrant Edge (Qdrant's
engine in-process, PyPI qdrant-edge-py, pinned in Benchmarks/peers/requirements.txt).

The shipped MiniLM set (60,703 x 384, cosine), M = 16, efConstruction = 200, payload of row i:
{"tenant": i % 100, "bucket": i % 10, "half": i % 2 == 0, "parity": "even"/"odd", "shard": i % 1000,
"name": <package>}. (The 50% filter is on `parity`: qdrant-edge-py 0.9.0 turns MatchValue(True) into
the integer 1, which matches no boolean.) Filters keep 50% / 10% / 10% (a range) / 1% / 0.1% of the points; the exact filtered top 10 is
computed here with NumPy. Both answer one query at a time on one thread, ef 64, payloads
returned. Rounds alternate (ours in a subprocess, `nearest-bench collection`, then Qdrant's in
this process), so that both see the same machine load; ratios are per round.

Also: unfiltered q/s at recall 0.90 / 0.95 / 0.99 (an ef sweep, interpolated), ingest (durable,
and indexed), reopen + first query, disk, and our search latency while a
bulk upsert of 20,000 points runs beside it (against the idle latency of the same round).

    python3 Benchmarks/collections/run-filtered.py [--rounds 3] [--queries 500] [--out FILE]
"""
import argparse, gzip, json, os, shutil, statistics, subprocess, sys, tempfile, time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DATA = os.path.join(ROOT, "..", "shared", "data", "debian-minilm-384-angular")

# name -> (our filter, Qdrant condition maker, NumPy mask maker)
FILTERS = {
    "none": None,
    "parity = even (50%)": {"parity": "even"},
    "bucket = 3 (10%)": {"bucket": 3},
    "tenant < 10 (10%, range)": {"tenant": {"$lt": 10}},
    "tenant = 7 (1%)": {"tenant": 7},
    "shard = 7 (0.1%)": {"shard": 7},
}


def read_fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    return raw.reshape(-1, dim + 1)[:, 1:].view(np.float32).copy()


def mask(name, n):
    i = np.arange(n)
    return {"none": np.ones(n, bool), "parity = even (50%)": i % 2 == 0, "bucket = 3 (10%)": i % 10 == 3,
            "tenant < 10 (10%, range)": i % 100 < 10, "tenant = 7 (1%)": i % 100 == 7,
            "shard = 7 (0.1%)": i % 1000 == 7}[name]


def ground_truth(base, queries, keep, k=10):
    ids = np.nonzero(keep)[0]
    scores = queries @ base[ids].T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids[top]


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def summary(seconds):
    s = np.array(seconds)
    return {"qps": float(len(s) / s.sum()), "p50_ms": float(np.percentile(s, 50) * 1e3),
            "p99_ms": float(np.percentile(s, 99) * 1e3)}


def disk_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


# ---- swift-nearest

SWEEP = [10, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256]  # ef below the limit (10) is the limit
TARGETS = [0.90, 0.95, 0.99]


def build_ours(nearest, work, payloads_path, indexing_threshold=None, name="ours"):
    root = os.path.join(work, name)
    shutil.rmtree(root, ignore_errors=True)
    threshold = ["--indexing-threshold", str(indexing_threshold)] if indexing_threshold else []
    subprocess.run([nearest, "collection", "create", "bench", "--dimensions", "384", "--metric", "cosine",
                    "--m", "16", "--ef-construction", "200", *threshold,
                    "--root", root], check=True, stdout=subprocess.DEVNULL)
    start = time.perf_counter()
    out = subprocess.run([nearest, "collection", "upsert", "bench", "--vectors", os.path.join(DATA, "base.fvecs"),
                          "--payloads", payloads_path, "--root", root, "--json"], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    report = json.loads(out.stdout)
    return os.path.join(root, "bench"), report, wall


def round_ours(bench, directory, queries_path, count, work, upsert_during, only_unfiltered=False):
    filters_path = os.path.join(work, "filters.json")
    chosen = {"none": None} if only_unfiltered else FILTERS
    json.dump({k: (json.dumps(v) if v is not None else None) for k, v in chosen.items()}, open(filters_path, "w"))
    out = os.path.join(work, "ours-round.json")
    args = [bench, "collection", "--directory", directory, "--queries", queries_path, "--count", str(count),
            "--filters", filters_path, "--out", out]
    if not only_unfiltered:
        args += ["--sweep", ",".join(map(str, SWEEP))]
    if upsert_during:
        args += ["--upsert-during", str(upsert_during), "--upsert-vectors", os.path.join(DATA, "base.fvecs")]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    subprocess.run(args, check=True, env=env)
    return json.load(open(out))


# ---- Qdrant Edge

def qdrant_filter(name):
    from qdrant_edge import FieldCondition, Filter, MatchValue, RangeFloat
    spec = FILTERS[name]
    if spec is None:
        return None
    (key, value), = spec.items()
    if isinstance(value, dict):
        return Filter(must=[FieldCondition(key=key, range=RangeFloat(lt=float(value["$lt"])))])
    return Filter(must=[FieldCondition(key=key, match=MatchValue(value))])


def qdrant_config():
    from qdrant_edge import Distance, EdgeConfig, EdgeOptimizersConfig, EdgeVectorParams, HnswIndexConfig
    return EdgeConfig(vectors=EdgeVectorParams(size=384, distance=Distance.Cosine),
                      hnsw_config=HnswIndexConfig(m=16, ef_construct=200, full_scan_threshold=10000),
                      optimizers=EdgeOptimizersConfig(indexing_threshold=1), max_search_threads=1)


def build_qdrant(work, base, payloads):
    from qdrant_edge import EdgeShard, PayloadSchemaType, Point, UpdateOperation
    path = os.path.join(work, "qdrant")
    shutil.rmtree(path, ignore_errors=True)
    shard = EdgeShard.create(path, qdrant_config())
    for field, kind in (("tenant", PayloadSchemaType.Integer), ("bucket", PayloadSchemaType.Integer),
                        ("shard", PayloadSchemaType.Integer), ("half", PayloadSchemaType.Bool),
                        ("parity", PayloadSchemaType.Keyword)):
        shard.update(UpdateOperation.create_field_index(field, kind))
    start = time.perf_counter()
    for s in range(0, len(base), 2000):
        shard.update(UpdateOperation.upsert_points(
            [Point(id=i, vector=base[i].tolist(), payload=payloads[i]) for i in range(s, min(s + 2000, len(base)))]))
    shard.flush()
    durable = time.perf_counter() - start
    shard.optimize()
    indexed = time.perf_counter() - start
    shard.close()
    return path, durable, indexed


def round_qdrant(path, queries):
    from qdrant_edge import EdgeShard, Query, SearchParams, SearchRequest
    start = time.perf_counter()
    shard = EdgeShard.load(path, qdrant_config())
    open_seconds = time.perf_counter() - start
    params = SearchParams(hnsw_ef=64)

    def search(vector, f):
        return shard.search(SearchRequest(query=Query.Nearest(vector), limit=10, filter=f, params=params, with_payload=True))

    vectors = [q.tolist() for q in queries]
    start = time.perf_counter()
    search(vectors[0], None)
    first = time.perf_counter() - start
    def timed(f, search_params):
        ids, seconds = [], []
        for v in vectors:
            t = time.perf_counter()
            hits = shard.search(SearchRequest(query=Query.Nearest(v), limit=10, filter=f, params=search_params, with_payload=True))
            seconds.append(time.perf_counter() - t)
            ids.append([h.id for h in hits])
        return {"ids": ids, "seconds": seconds}

    results = {name: timed(qdrant_filter(name), params) for name in FILTERS}
    sweep = {str(ef): timed(None, SearchParams(hnsw_ef=ef)) for ef in SWEEP}
    shard.close()
    return {"openSeconds": open_seconds, "firstQuerySeconds": first, "filters": results, "sweep": sweep}


def sweep_points(sweep, truth):
    """(ef, recall, q/s) for each swept beam width."""
    return sorted((int(ef), recall(r["ids"], truth), len(r["seconds"]) / sum(r["seconds"])) for ef, r in sweep.items())


def qps_at(sweep, truth, target):
    """Queries/s at `target` recall, interpolated (log q/s, linear in recall) between swept efs."""
    points = sorted((r, q) for _, r, q in sweep_points(sweep, truth))
    for (r0, q0), (r1, q1) in zip(points, points[1:]):
        if r0 <= target <= r1:
            if r1 == r0:
                return q1
            w = (target - r0) / (r1 - r0)
            return float(np.exp(np.log(q0) + w * (np.log(q1) - np.log(q0))))
    return None


# ---- Chroma (PersistentClient: its engine in-process, on disk)

def build_chroma(work, base, payloads):
    import chromadb
    path = os.path.join(work, "chroma")
    shutil.rmtree(path, ignore_errors=True)
    client = chromadb.PersistentClient(path=path)
    collection = client.create_collection(
        "bench", configuration={"hnsw": {"space": "cosine", "max_neighbors": 16, "ef_construction": 200, "ef_search": 64}})
    start = time.perf_counter()
    step = min(5000, client.get_max_batch_size())
    for s in range(0, len(base), step):
        e = min(s + step, len(base))
        collection.add(ids=[str(i) for i in range(s, e)], embeddings=base[s:e], metadatas=payloads[s:e])
    return path, time.perf_counter() - start


def chroma_where(name):
    spec = FILTERS[name]
    if spec is None:
        return None
    (key, value), = spec.items()
    return {key: {"$lt": value["$lt"]}} if isinstance(value, dict) else {key: value}


def round_chroma(path, queries):
    import chromadb
    start = time.perf_counter()
    collection = chromadb.PersistentClient(path=path).get_collection("bench")
    collection.query(query_embeddings=[queries[0]], n_results=10)
    open_seconds = time.perf_counter() - start
    results = {}
    for name in FILTERS:
        where = chroma_where(name)
        ids, seconds = [], []
        for q in queries:
            t = time.perf_counter()
            found = collection.query(query_embeddings=[q], n_results=10, where=where, include=["metadatas", "distances"])
            seconds.append(time.perf_counter() - t)
            ids.append([int(i) for i in found["ids"][0]])
        results[name] = {"ids": ids, "seconds": seconds}
    return {"openSeconds": open_seconds, "filters": results}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--upsert-during", type=int, default=20000)
    parser.add_argument("--chroma-queries", type=int, default=100, help="queries per filter for Chroma (0: leave it out)")
    parser.add_argument("--out", default=os.path.join(ROOT, "Benchmarks", "results", "collection-filtered-minilm.json"))
    args = parser.parse_args()

    work = os.path.join(tempfile.gettempdir(), "nearest-filtered-bench")
    os.makedirs(work, exist_ok=True)
    subprocess.run(["swift", "build", "-c", "release", "--product", "nearest"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["swift", "build", "-c", "release", "--product", "nearest-bench"], cwd=os.path.join(ROOT, "Benchmarks"),
                   check=True, stdout=subprocess.DEVNULL)
    nearest = os.path.join(ROOT, ".build", "release", "nearest")
    bench = os.path.join(ROOT, "Benchmarks", ".build", "release", "nearest-bench")

    base = read_fvecs(os.path.join(DATA, "base.fvecs"))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = read_fvecs(os.path.join(DATA, "query.fvecs"))[: args.queries]
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    with gzip.open(os.path.join(DATA, "base_names.txt.gz"), "rt") as f:
        names = [line.strip() for line in f]
    payloads = [{"tenant": i % 100, "bucket": i % 10, "half": i % 2 == 0, "parity": "odd" if i % 2 else "even",
                 "shard": i % 1000, "name": names[i]}
                for i in range(len(base))]
    payloads_path = os.path.join(work, "payloads.jsonl")
    with open(payloads_path, "w") as f:
        for p in payloads:
            f.write(json.dumps(p) + "\n")
    truth = {name: ground_truth(base, queries, mask(name, len(base))) for name in FILTERS}

    print("building ours ...", file=sys.stderr)
    directory, ours_ingest, ours_wall = build_ours(nearest, work, payloads_path)
    # The same points with a larger indexing threshold than the default (1,365 at 384 floats),
    # for searches during a bulk upsert: more points wait for the graph (scanned exactly by every
    # search), writes wait for it less.
    large_directory, _, _ = build_ours(nearest, work, payloads_path, indexing_threshold=10000, name="ours-10000")
    print("building Qdrant Edge ...", file=sys.stderr)
    qdrant_path, q_durable, q_indexed = build_qdrant(work, base, payloads)
    if args.chroma_queries:
        print("building Chroma ...", file=sys.stderr)
        chroma_path, chroma_ingest = build_chroma(work, base, payloads)
    queries_path = os.path.join(DATA, "query.fvecs")

    rounds = []
    for r in range(args.rounds):
        print(f"round {r + 1}: ours", file=sys.stderr)
        ours = round_ours(bench, directory, queries_path, args.queries, work, args.upsert_during if r == 0 else 0)
        print(f"round {r + 1}: Qdrant Edge", file=sys.stderr)
        theirs = round_qdrant(qdrant_path, queries)
        row = {"filters": {}}
        for name in FILTERS:
            o, t = ours["filters"][name], theirs["filters"][name]
            row["filters"][name] = {
                "ours": {**summary(o["seconds"]), "recall": recall(o["ids"], truth[name])},
                "qdrant": {**summary(t["seconds"]), "recall": recall(t["ids"], truth[name])},
            }
            row["filters"][name]["qps_ratio"] = row["filters"][name]["ours"]["qps"] / row["filters"][name]["qdrant"]["qps"]
        row["reopen"] = {"ours": ours["openSeconds"] + ours["firstQuerySeconds"],
                         "qdrant": theirs["openSeconds"] + theirs["firstQuerySeconds"]}
        row["unfiltered_sweep"] = {"ours": sweep_points(ours["sweep"], truth["none"]),
                                   "qdrant": sweep_points(theirs["sweep"], truth["none"])}
        row["unfiltered_qps_at_recall"] = {}
        for target in TARGETS:
            o, t = qps_at(ours["sweep"], truth["none"], target), qps_at(theirs["sweep"], truth["none"], target)
            row["unfiltered_qps_at_recall"][str(target)] = {"ours": o, "qdrant": t, "ratio": o / t if o and t else None}
        if args.chroma_queries:
            print(f"round {r + 1}: Chroma", file=sys.stderr)
            chroma = round_chroma(chroma_path, queries[: args.chroma_queries])
            row["reopen"]["chroma"] = chroma["openSeconds"]
            for name in FILTERS:
                c = chroma["filters"][name]
                row["filters"][name]["chroma"] = {**summary(c["seconds"]), "recall": recall(c["ids"], truth[name][: args.chroma_queries])}
                row["filters"][name]["qps_ratio_chroma"] = row["filters"][name]["ours"]["qps"] / row["filters"][name]["chroma"]["qps"]
        if ours.get("duringUpsert"):
            row["during_upsert"] = {"idle": summary(ours["filters"]["none"]["seconds"]),
                                    "during": summary(ours["duringUpsert"]["seconds"]),
                                    "upsert_seconds": ours["upsertSeconds"], "settled_seconds": ours["settledSeconds"]}
            large = round_ours(bench, large_directory, queries_path, args.queries, work, args.upsert_during, only_unfiltered=True)
            row["during_upsert_threshold_10000"] = {"idle": summary(large["filters"]["none"]["seconds"]),
                                                    "during": summary(large["duringUpsert"]["seconds"]),
                                                    "upsert_seconds": large["upsertSeconds"],
                                                    "settled_seconds": large["settledSeconds"]}
        row["ours_peak_rss_bytes"] = ours["peakRSSBytes"]
        rounds.append(row)

    result = {
        "dataset": "debian-minilm-384-angular", "points": len(base), "queries": args.queries, "ef": 64, "limit": 10,
        "cores": os.cpu_count(), "qdrant_edge_version": "0.9.0",
        "ingest": {"ours_durable_seconds": ours_ingest.get("store_seconds"), "ours_indexed_seconds": ours_wall,
                   "qdrant_durable_seconds": q_durable, "qdrant_indexed_seconds": q_indexed},
        "disk_bytes": {"ours": disk_bytes(directory), "qdrant": disk_bytes(qdrant_path),
                       **({"chroma": disk_bytes(chroma_path)} if args.chroma_queries else {})},
        "rounds": rounds,
    }
    json.dump(result, open(args.out, "w"), indent=2)

    print(f"| filter | ours q/s | Qdrant Edge q/s | ratio per round | recall ours / Qdrant | p99 ms ours / Qdrant |")
    print("|---|---|---|---|---|---|")
    for name in FILTERS:
        rs = [r["filters"][name] for r in rounds]
        print(f"| {name} | {statistics.median(x['ours']['qps'] for x in rs):,.0f} | "
              f"{statistics.median(x['qdrant']['qps'] for x in rs):,.0f} | "
              f"{', '.join('%.2f' % x['qps_ratio'] for x in rs)} | "
              f"{rs[0]['ours']['recall']:.3f} / {rs[0]['qdrant']['recall']:.3f} | "
              f"{statistics.median(x['ours']['p99_ms'] for x in rs):.2f} / {statistics.median(x['qdrant']['p99_ms'] for x in rs):.2f} |")
    if args.chroma_queries:
        result["ingest"]["chroma_indexed_seconds"] = chroma_ingest
        print(f"\n| filter | Chroma q/s | ours ÷ Chroma, per round | Chroma recall |")
        print("|---|---|---|---|")
        for name in FILTERS:
            rs = [r["filters"][name] for r in rounds]
            print(f"| {name} | {statistics.median(x['chroma']['qps'] for x in rs):,.0f} | "
                  f"{', '.join('%.1f' % x['qps_ratio_chroma'] for x in rs)} | {rs[0]['chroma']['recall']:.3f} |")
        json.dump(result, open(args.out, "w"), indent=2)
    i = result["ingest"]
    print(f"\ningest (s): ours durable {i['ours_durable_seconds']}, indexed {i['ours_indexed_seconds']:.1f}; "
          f"Qdrant durable {i['qdrant_durable_seconds']:.1f}, indexed {i['qdrant_indexed_seconds']:.1f}")
    print(f"reopen + first query (s): " + ", ".join(f"ours {r['reopen']['ours']:.3f} / Qdrant {r['reopen']['qdrant']:.3f}" for r in rounds))
    print(f"disk: ours {result['disk_bytes']['ours'] / 1e6:.0f} MB, Qdrant {result['disk_bytes']['qdrant'] / 1e6:.0f} MB"
          + (f", Chroma {result['disk_bytes']['chroma'] / 1e6:.0f} MB; Chroma ingest {chroma_ingest:.1f} s" if args.chroma_queries else ""))
    for target in TARGETS:
        cells = [r["unfiltered_qps_at_recall"][str(target)] for r in rounds]
        print(f"unfiltered q/s at recall {target}: " + ", ".join(
            f"ours {c['ours']:,.0f} / Qdrant {c['qdrant']:,.0f} = {c['ratio']:.2f}" if c["ratio"] else "out of the swept range"
            for c in cells))
    for side in ("ours", "qdrant"):
        print(f"unfiltered sweep, {side} (ef, recall, q/s), round 1: "
              + ", ".join(f"{ef} {r:.3f} {q:,.0f}" for ef, r, q in rounds[0]["unfiltered_sweep"][side]))
    for key, label in (("during_upsert", "default indexing threshold (1,365)"), ("during_upsert_threshold_10000", "indexing threshold 10,000")):
        if key in rounds[0]:
            d = rounds[0][key]
            print(f"unfiltered p99 during a {args.upsert_during}-point upsert until indexed, {label}: {d['during']['p99_ms']:.2f} ms "
                  f"(idle {d['idle']['p99_ms']:.2f} ms, {d['during']['p99_ms'] / d['idle']['p99_ms']:.2f}x); "
                  f"upsert took {d['upsert_seconds']:.1f} s, indexed after {d['settled_seconds']:.1f} s")


if __name__ == "__main__":
    main()
