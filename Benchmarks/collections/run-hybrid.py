#!/usr/bin/env python3
"""Hybrid search (BM25 + dense) in the store: swift-nearest's collection against Qdrant Edge (Qdrant's
engine in-process, PyPI qdrant-edge-py 0.9.0, pinned in Benchmarks/peers/requirements.txt).

Data: the shipped MiniLM set (60,703 x 384, unit vectors, cosine) with the Debian package
description of each row (base_texts.jsonl.gz) as payload {"text": ..., "name": ...}, id = row.
Queries: the 1,000 known-item queries (known_items.jsonl.gz: a package's short description; the
target is that package's row) and their embeddings (known_items.fvecs). A hit is the target in the
top 10. Metrics per mode (dense, text = BM25, hybrid RRF with k = 60, hybrid DBSF): MRR@10, hit@1,
hit@10, and queries/second, one query at a time on one thread. Reference figures computed outside
the project: MRR@10 dense (exact) 0.913, BM25 0.939, RRF(60) 0.944, DBSF 0.961.

Both engines: HNSW M = 16, efConstruction = 200, ef 64 for the dense search, limit 10, no payload
returned; a hybrid query fuses a dense leg and a BM25 leg. Qdrant's legs take P candidates each
(--prefetch, default 100); ours take what its CLI does by default (--ours-flags passes more flags to
`collection search`). BM25 with k1 = 1.2, b = 0.75; Qdrant's text analysis: lowercase, word
tokens, English Snowball (Porter 2) stemmer, no stopwords.

Ours: `nearest collection create ... --text-field text`, `collection upsert --vectors base.fvecs
--payloads payloads.jsonl`, then one `nearest collection search --queries FILE.jsonl` per mode (each
line {"vector": [...]} / {"text": "..."} / both, fused with --fusion rrf|dbsf); q/s = N / the
search seconds it reports on stderr's last line.

Qdrant Edge 0.9.0 does BM25 in-process two ways, and both are measured (one shard holds both):
  - "qdrant": a full-text payload index that scores, TextIndexParams(tokenizer=Word,
    lowercase=True, stemmer=SnowballParams(English), scoring=True) on "text", queried with
    TextQuery("text", query) (k1/b via Bm25Params; the index keeps the real document lengths).
    This is the counterpart of our --text-field.
  - "qdrant_sparse": BM25 sparse vectors made by qdrant_edge.Bm25 (Bm25Config(k=1.2, b=0.75,
    avg_len=<the corpus's mean token count, measured here>, same analysis)) in a sparse vector
    "bm25" with modifier=Modifier.Idf; Bm25.embed_document for points, embed_query (1 per unique
    token) for queries, Query.Nearest(sparse, using="bm25").
  Hybrid: QueryRequest(prefetches=[Prefetch(P, Query.Nearest(v, using="dense"), params=ef 64),
  Prefetch(P, <text leg>)], query=Fusion.Rrf(k=60) | Fusion.Dbsf(), limit=10). Qdrant's q/s =
  queries / the wall time of a loop of shard.query calls (requests built before the loop). The HNSW
  graph is built by optimize(), with indexing_threshold = 1 KB so every segment gets one.

Rounds alternate (ours in subprocesses, then Qdrant in this process), so that both see the same
machine load; ratios are per round. Everything built lives in a temp dir, rebuilt on each run.

    python3 Benchmarks/collections/run-hybrid.py [--rounds 3] [--queries 1000] [--prefetch 100] [--out FILE]
"""
import argparse, gzip, json, os, shutil, statistics, subprocess, sys, tempfile, time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DATA = os.path.join(ROOT, "..", "shared", "data", "debian-minilm-384-angular")

K = 10            # the cut-off of every metric, and the result limit
EF = 64           # HNSW beam width of the dense search (leg)
RRF_K = 60
BM25_K1, BM25_B = 1.2, 0.75
MODES = ["dense", "text", "rrf", "dbsf"]
HYBRID = ["rrf", "dbsf"]
ENGINES = ["ours", "qdrant", "qdrant_sparse"]


def read_fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    return raw.reshape(-1, dim + 1)[:, 1:].view(np.float32).copy()


def read_jsonl_gz(path):
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def metrics(found, targets):
    """MRR@10, hit@1, hit@10 of ranked id lists against one target id per query."""
    ranks = []
    for ids, target in zip(found, targets):
        ids = list(ids)[:K]
        ranks.append(ids.index(target) + 1 if target in ids else None)
    return {"mrr": float(np.mean([1 / r if r else 0 for r in ranks])),
            "hit1": float(np.mean([r == 1 for r in ranks])),
            "hit10": float(np.mean([r is not None for r in ranks]))}


def disk_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


# ---- swift-nearest

def build_ours(nearest, work, vectors_path, payloads_path):
    root = os.path.join(work, "ours")
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run([nearest, "collection", "create", "bench", "--root", root, "--dimensions", "384",
                    "--metric", "cosine", "--m", "16", "--ef-construction", "200", "--text-field", "text"],
                   check=True, stdout=subprocess.DEVNULL)
    start = time.perf_counter()
    out = subprocess.run([nearest, "collection", "upsert", "bench", "--vectors", vectors_path,
                          "--payloads", payloads_path, "--root", root, "--json"], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    return root, json.loads(out.stdout), wall


def write_query_files(work, vectors, texts):
    """One JSON Lines file per query kind: dense, text, and both (hybrid)."""
    paths = {kind: os.path.join(work, f"queries-{kind}.jsonl") for kind in ("dense", "text", "hybrid")}
    with open(paths["dense"], "w") as d, open(paths["text"], "w") as t, open(paths["hybrid"], "w") as h:
        for v, text in zip(vectors, texts):
            vector = "[%s]" % ",".join("%.7g" % x for x in v)
            d.write('{"vector":%s}\n' % vector)
            t.write(json.dumps({"text": text}) + "\n")
            h.write('{"vector":%s,"text":%s}\n' % (vector, json.dumps(text)))
    return paths


def search_ours(nearest, root, queries_path, fusion=None, extra=()):
    args = [nearest, "collection", "search", "bench", "--root", root, "--queries", queries_path,
            "--limit", str(K), "--no-payload", "--ef", str(EF), *extra]
    if fusion:
        args += ["--fusion", fusion]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env)
    ids = [[hit["id"] for hit in json.loads(line)["results"]] for line in out.stdout.splitlines() if line.strip()]
    timing = json.loads(out.stderr.strip().splitlines()[-1])
    assert timing["queries"] == len(ids), (timing, len(ids))
    return {"ids": ids, "qps": timing["queries"] / timing["seconds"]}


def round_ours(nearest, root, paths, extra):
    return {"dense": search_ours(nearest, root, paths["dense"]),
            "text": search_ours(nearest, root, paths["text"]),
            "rrf": search_ours(nearest, root, paths["hybrid"], "rrf", extra),
            "dbsf": search_ours(nearest, root, paths["hybrid"], "dbsf", extra)}


# ---- Qdrant Edge

def bm25_config(avg_len=256.0, b=BM25_B):
    from qdrant_edge import Bm25Config, SnowballLanguage, SnowballParams, StopwordsSet, TokenizerType
    return Bm25Config(k=BM25_K1, b=b, avg_len=avg_len, tokenizer=TokenizerType.Word, lowercase=True,
                      stopwords=StopwordsSet(languages=set(), custom=set()),
                      stemmer=SnowballParams(SnowballLanguage.English))


def mean_token_count(texts):
    """The corpus's mean document length in tokens, as qdrant_edge.Bm25 counts them: with b = 0 a
    document value is tf * (k1 + 1) / (tf + k1), so tf = k1 * v / (k1 + 1 - v)."""
    from qdrant_edge import Bm25
    flat = Bm25(bm25_config(b=0.0))
    total = 0.0
    for text in texts:
        v = np.array(flat.embed_document(text).values, dtype=np.float64)
        total += float(np.sum(BM25_K1 * v / (BM25_K1 + 1 - v)))
    return total / len(texts)


def qdrant_config():
    from qdrant_edge import (Distance, EdgeConfig, EdgeOptimizersConfig, EdgeSparseVectorParams, EdgeVectorParams,
                             HnswIndexConfig, Modifier)
    return EdgeConfig(vectors={"dense": EdgeVectorParams(size=384, distance=Distance.Cosine)},
                      sparse_vectors={"bm25": EdgeSparseVectorParams(modifier=Modifier.Idf)},
                      hnsw_config=HnswIndexConfig(m=16, ef_construct=200, full_scan_threshold=10000),
                      optimizers=EdgeOptimizersConfig(indexing_threshold=1), max_search_threads=1)


def build_qdrant(work, base, docs, avg_len):
    from qdrant_edge import (Bm25, EdgeShard, Point, SnowballLanguage, SnowballParams, TextIndexParams,
                             TokenizerType, UpdateOperation)
    path = os.path.join(work, "qdrant")
    shutil.rmtree(path, ignore_errors=True)
    shard = EdgeShard.create(path, qdrant_config())
    shard.update(UpdateOperation.create_field_index("text", TextIndexParams(
        tokenizer=TokenizerType.Word, lowercase=True, stemmer=SnowballParams(SnowballLanguage.English), scoring=True)))
    bm25 = Bm25(bm25_config(avg_len))
    start = time.perf_counter()
    for s in range(0, len(base), 2000):
        shard.update(UpdateOperation.upsert_points([
            Point(id=i, vector={"dense": base[i].tolist(), "bm25": bm25.embed_document(docs[i]["text"])},
                  payload={"text": docs[i]["text"], "name": docs[i]["name"]})
            for i in range(s, min(s + 2000, len(base)))]))
    shard.flush()
    durable = time.perf_counter() - start
    shard.optimize()
    indexed = time.perf_counter() - start
    shard.close()
    return path, durable, indexed


def qdrant_requests(vectors, texts, avg_len, prefetch):
    """The QueryRequests of every (engine, mode), built once, outside the timed loops."""
    from qdrant_edge import Bm25, Fusion, Prefetch, Query, QueryRequest, SearchParams, TextQuery
    bm25 = Bm25(bm25_config(avg_len))
    params = SearchParams(hnsw_ef=EF)
    fusions = {"rrf": lambda: Fusion.Rrf(k=RRF_K), "dbsf": lambda: Fusion.Dbsf()}
    requests = {"qdrant": {m: [] for m in MODES}, "qdrant_sparse": {m: [] for m in MODES}}
    for v, text in zip(vectors, texts):
        v = v.tolist()
        sparse = bm25.embed_query(text)
        dense = QueryRequest(limit=K, query=Query.Nearest(v, using="dense"), params=params, with_payload=False)
        legs = {"qdrant": lambda: TextQuery("text", text), "qdrant_sparse": lambda: Query.Nearest(sparse, using="bm25")}
        for engine, leg in legs.items():
            requests[engine]["dense"].append(dense)
            requests[engine]["text"].append(QueryRequest(limit=K, query=leg(), with_payload=False))
            for mode in HYBRID:
                requests[engine][mode].append(QueryRequest(
                    limit=K, with_payload=False, query=fusions[mode](),
                    prefetches=[Prefetch(limit=prefetch, query=Query.Nearest(v, using="dense"), params=params),
                                Prefetch(limit=prefetch, query=leg())]))
    return requests


def round_qdrant(path, requests):
    from qdrant_edge import EdgeShard
    shard = EdgeShard.load(path, qdrant_config())
    out = {}
    for engine, modes in requests.items():
        out[engine] = {}
        for mode, batch in modes.items():
            if engine == "qdrant_sparse" and mode == "dense":
                out[engine][mode] = out["qdrant"]["dense"]  # the same search
                continue
            shard.query(batch[0])  # warm-up, untimed
            start = time.perf_counter()
            results = [shard.query(r) for r in batch]
            seconds = time.perf_counter() - start
            out[engine][mode] = {"ids": [[p.id for p in hits] for hits in results], "qps": len(batch) / seconds}
    shard.close()
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=1000, help="known-item queries used (of 1,000)")
    parser.add_argument("--prefetch", type=int, default=100, help="candidates per leg of a hybrid query (Qdrant)")
    parser.add_argument("--points", type=int, default=0,
                        help="use the first N rows only, and the queries whose target is among them (a quick check)")
    parser.add_argument("--ours-flags", default="", help='more flags for our hybrid searches, e.g. "--candidates 100"')
    parser.add_argument("--nearest", help="the nearest binary to use as is (default: swift build -c release)")
    parser.add_argument("--skip-ours", action="store_true", help="measure Qdrant Edge alone")
    parser.add_argument("--out", default=os.path.join(ROOT, "Benchmarks", "results", "collection-hybrid-minilm.json"))
    args = parser.parse_args()

    work = os.path.join(tempfile.gettempdir(), "nearest-hybrid-bench")
    os.makedirs(work, exist_ok=True)
    nearest = args.nearest or os.path.join(ROOT, ".build", "release", "nearest")
    if not args.skip_ours and not args.nearest:
        subprocess.run(["swift", "build", "-c", "release", "--product", "nearest"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)

    base = read_fvecs(os.path.join(DATA, "base.fvecs"))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    docs = read_jsonl_gz(os.path.join(DATA, "base_texts.jsonl.gz"))
    assert len(docs) == len(base)
    known = read_jsonl_gz(os.path.join(DATA, "known_items.jsonl.gz"))
    vectors = read_fvecs(os.path.join(DATA, "known_items.fvecs"))
    vectors_path = os.path.join(DATA, "base.fvecs")
    if args.points:
        base, docs = base[: args.points], docs[: args.points]
        keep = [i for i, k in enumerate(known) if k["target"] < args.points]
        known, vectors = [known[i] for i in keep], vectors[keep]
        vectors_path = os.path.join(work, "base.fvecs")
        raw = np.fromfile(os.path.join(DATA, "base.fvecs"), dtype=np.int32)
        raw.reshape(-1, 385)[: args.points].tofile(vectors_path)
    known, vectors = known[: args.queries], vectors[: args.queries]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [k["query"] for k in known]
    targets = [k["target"] for k in known]
    exact = np.argsort(-(vectors @ base.T), axis=1, kind="stable")[:, :K]
    dense_exact = metrics(exact.tolist(), targets)

    payloads_path = os.path.join(work, "payloads.jsonl")
    with open(payloads_path, "w") as f:
        for d in docs:
            f.write(json.dumps({"text": d["text"], "name": d["name"]}) + "\n")
    paths = write_query_files(work, vectors, texts)

    ingest = {}
    if not args.skip_ours:
        print("building ours ...", file=sys.stderr)
        ours_root, ours_report, ours_wall = build_ours(nearest, work, vectors_path, payloads_path)
        ingest["ours_durable_seconds"] = ours_report.get("store_seconds")
        ingest["ours_indexed_seconds"] = ours_wall
    print("building Qdrant Edge ...", file=sys.stderr)
    avg_len = mean_token_count([d["text"] for d in docs])
    qdrant_path, q_durable, q_indexed = build_qdrant(work, base, docs, avg_len)
    ingest.update(qdrant_durable_seconds=q_durable, qdrant_indexed_seconds=q_indexed)
    requests = qdrant_requests(vectors, texts, avg_len, args.prefetch)

    engines = ENGINES[1:] if args.skip_ours else ENGINES
    rounds = []
    for r in range(args.rounds):
        found = {}
        if not args.skip_ours:
            print(f"round {r + 1}: ours", file=sys.stderr)
            found["ours"] = round_ours(nearest, ours_root, paths, ["--candidates", str(args.prefetch), *args.ours_flags.split()])
        print(f"round {r + 1}: Qdrant Edge", file=sys.stderr)
        found.update(round_qdrant(qdrant_path, requests))
        row = {e: {m: {**metrics(found[e][m]["ids"], targets), "qps": found[e][m]["qps"]} for m in MODES} for e in engines}
        if not args.skip_ours:
            row["qps_ratio"] = {f"{m}/{peer}": row["ours"][m]["qps"] / row[peer][m]["qps"]
                                for peer in ENGINES[1:] for m in MODES}
        rounds.append(row)
        for e in engines:
            print(f"  {e}: " + ", ".join(f"{m} MRR {row[e][m]['mrr']:.3f} {row[e][m]['qps']:,.0f} q/s" for m in MODES),
                  file=sys.stderr)

    result = {
        "dataset": "debian-minilm-384-angular", "points": len(base), "queries": len(texts), "limit": K, "ef": EF,
        "prefetch": args.prefetch, "ours_flags": args.ours_flags, "rrf_k": RRF_K, "bm25": {"k1": BM25_K1, "b": BM25_B, "qdrant_sparse_avg_len": avg_len},
        "cores": os.cpu_count(), "qdrant_edge_version": "0.9.0", "dense_exact": dense_exact,
        "reference_mrr": {"dense_exact": 0.913, "text": 0.939, "rrf": 0.944, "dbsf": 0.961},
        "ingest": ingest,
        "disk_bytes": {**({"ours": disk_bytes(ours_root)} if not args.skip_ours else {}), "qdrant": disk_bytes(qdrant_path)},
        "rounds": rounds,
    }
    json.dump(result, open(args.out, "w"), indent=2)

    print(f"dense exact (NumPy): MRR@10 {dense_exact['mrr']:.3f}, hit@1 {dense_exact['hit1']:.3f}, "
          f"hit@10 {dense_exact['hit10']:.3f}\n")
    print("| engine | mode | MRR@10 | hit@1 | hit@10 | q/s (median) |" + (" ours ÷ it, per round |" if not args.skip_ours else ""))
    print("|---|---|---|---|---|---|" + ("---|" if not args.skip_ours else ""))
    for e in engines:
        for m in MODES:
            if e == "qdrant_sparse" and m == "dense":
                continue
            x = rounds[0][e][m]
            line = (f"| {e} | {m} | {x['mrr']:.3f} | {x['hit1']:.3f} | {x['hit10']:.3f} | "
                    f"{statistics.median(r[e][m]['qps'] for r in rounds):,.0f} |")
            if not args.skip_ours:
                line += " " + (", ".join("%.2f" % r["qps_ratio"][f"{m}/{e}"] for r in rounds) if e != "ours" else "") + " |"
            print(line)
    print(f"\ningest (s): " + ", ".join(f"{k} {v:.1f}" for k, v in ingest.items() if v is not None))
    print("disk: " + ", ".join(f"{k} {v / 1e6:.0f} MB" for k, v in result["disk_bytes"].items()))


if __name__ == "__main__":
    main()
