#!/usr/bin/env python3
"""The retrieval half of a RAG pipeline, written as Qdrant tutorials write it, pointed at
`nearest serve` instead of a Qdrant server.

It indexes Debian package descriptions (the shipped MiniLM set: each text with its embedding,
so no model is needed here) and answers known-item questions: each question is a package's
short description, embedded by the same model, and the package it describes should come back
in the top 5 — the context a language model would then be given.

    nearest serve --root /tmp/rag &
    python3 examples/rag_qdrant_client.py [--url http://127.0.0.1:6333] [--limit 10000]
"""
import argparse
import gzip
import json
import os
import sys

import numpy as np
from qdrant_client import QdrantClient, models

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "debian-minilm-384-angular")


def read_fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    return raw.reshape(-1, raw[0] + 1)[:, 1:].view(np.float32)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=os.environ.get("QDRANT_URL", "http://127.0.0.1:6333"))
    parser.add_argument("--limit", type=int, default=0, help="index only the first N documents (0: all)")
    parser.add_argument("--min-hit-rate", type=float, default=0.0, help="exit 1 below this hit@5")
    args = parser.parse_args()

    embeddings = read_fvecs(os.path.join(DATA, "base.fvecs"))
    with gzip.open(os.path.join(DATA, "base_texts.jsonl.gz"), "rt") as f:
        documents = [json.loads(line) for line in f]
    count = args.limit or len(documents)

    client = QdrantClient(url=args.url, timeout=120)
    if client.collection_exists("debian"):
        client.delete_collection("debian")
    client.create_collection("debian", vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE))
    client.upload_points("debian", points=(
        models.PointStruct(id=i, vector=embeddings[i].tolist(), payload={"name": documents[i]["name"], "text": documents[i]["text"]})
        for i in range(count)), batch_size=256)
    print(f"indexed {client.count('debian').count} documents")

    questions = read_fvecs(os.path.join(DATA, "known_items.fvecs"))
    with gzip.open(os.path.join(DATA, "known_items.jsonl.gz"), "rt") as f:
        known = [json.loads(line) for line in f]
    asked = hits = 0
    for item, vector in zip(known, questions):
        if item["target"] >= count:
            continue
        found = client.query_points("debian", query=vector.tolist(), limit=5, with_payload=True).points
        if asked == 0:
            print(f"\nquestion: {item['query']}\ncontext for the model:")
            for point in found:
                print(f"  [{point.score:.3f}] {point.payload['name']}: {point.payload['text'].splitlines()[0]}")
        asked += 1
        hits += any(point.id == item["target"] for point in found)
    rate = hits / max(asked, 1)
    print(f"\nhit@5 on {asked} known-item questions: {rate:.3f}")
    sys.exit(0 if rate >= args.min_hit_rate else 1)


if __name__ == "__main__":
    main()
