"""`nearest serve` under load on loopback: clients upserting and searching at once for a bounded
time (no errors, no acknowledged point lost, latencies reported), and a kill -9 in the middle of
concurrent upserts (every acknowledged point is there after the restart)."""
import random
import signal
import statistics
import threading
import time

from qdrant_client import QdrantClient, models

from conftest import Server

DIM = 16


def point(i, rng):
    return models.PointStruct(id=i, vector=[rng.uniform(-1, 1) for _ in range(DIM)],
                              payload={"writer": i % 4, "bucket": i % 10, "text": f"point {i}"})


class Load:
    """Writers upserting disjoint id ranges and readers querying, until `stop` is set."""

    def __init__(self, url, writers=4, readers=4):
        self.url = url
        self.stop = threading.Event()
        self.acknowledged = set()
        self.errors = []
        self.latencies = {"upsert": [], "query": [], "filtered query": []}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.write, args=(w,)) for w in range(writers)]
        self.threads += [threading.Thread(target=self.read, args=(r,)) for r in range(readers)]

    def timed(self, kind, call):
        start = time.perf_counter()
        result = call()
        with self.lock:
            self.latencies[kind].append(time.perf_counter() - start)
        return result

    def write(self, writer):
        client, rng, batch = QdrantClient(url=self.url, timeout=60), random.Random(writer), 0
        try:
            while not self.stop.is_set():
                ids = range(writer * 1_000_000 + batch * 50, writer * 1_000_000 + (batch + 1) * 50)
                self.timed("upsert", lambda: client.upsert("load", points=[point(i, rng) for i in ids], wait=batch % 2 == 0))
                with self.lock:
                    self.acknowledged.update(ids)
                batch += 1
        except Exception as error:  # a kill -9 ends the writers: only acknowledged ids count
            if not self.stop.is_set():
                self.errors.append(repr(error))

    def read(self, reader):
        client, rng = QdrantClient(url=self.url, timeout=60), random.Random(100 + reader)
        try:
            while not self.stop.is_set():
                q = [rng.uniform(-1, 1) for _ in range(DIM)]
                hits = self.timed("query", lambda: client.query_points("load", query=q, limit=10).points)
                assert len(hits) <= 10
                bucket = rng.randrange(10)
                hits = self.timed("filtered query", lambda: client.query_points("load", query=q, limit=5, with_payload=True,
                    query_filter=models.Filter(must=[models.FieldCondition(key="bucket", match=models.MatchValue(value=bucket))])).points)
                assert all(h.payload["bucket"] == bucket for h in hits)
        except Exception as error:
            if not self.stop.is_set():
                self.errors.append(repr(error))

    def run(self, seconds):
        for t in self.threads:
            t.start()
        time.sleep(seconds)
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def report(self):
        for kind, values in self.latencies.items():
            if values:
                values = sorted(values)
                print(f"{kind}: {len(values)} requests, p50 {statistics.median(values) * 1e3:.2f} ms, "
                      f"p99 {values[int(0.99 * (len(values) - 1))] * 1e3:.2f} ms")


def test_concurrent_upserts_and_searches(client, server):
    client.create_collection("load", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    load = Load(server.url)
    load.run(seconds=8)
    load.report()
    assert not load.errors, load.errors[:3]
    assert len(load.latencies["query"]) > 50 and len(load.acknowledged) > 500
    assert client.count("load").count == len(load.acknowledged)
    sample = random.Random(1).sample(sorted(load.acknowledged), 200)
    assert sorted(r.id for r in client.retrieve("load", ids=sample)) == sorted(sample)


def test_kill_9_during_concurrent_upserts(root):
    server = Server(root).start()
    QdrantClient(url=server.url).create_collection("load", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    load = Load(server.url, writers=4, readers=1)
    for t in load.threads:
        t.start()
    time.sleep(3)
    server.stop(signal.SIGKILL)  # writers may be mid-request: those points were never acknowledged
    load.stop.set()
    for t in load.threads:
        t.join(timeout=60)
    assert len(load.acknowledged) > 100
    server = Server(root).start()
    try:
        client = QdrantClient(url=server.url, timeout=60)
        acknowledged = sorted(load.acknowledged)
        found = set()
        for start in range(0, len(acknowledged), 1000):
            found.update(r.id for r in client.retrieve("load", ids=acknowledged[start:start + 1000], with_payload=False))
        assert found == set(acknowledged), f"{len(set(acknowledged) - found)} acknowledged points lost"
        # The store and its index agree: each point finds itself.
        probe = client.retrieve("load", ids=acknowledged[:20], with_vectors=True)
        for record in probe:
            assert client.query_points("load", query=record.vector, limit=1, search_params=models.SearchParams(exact=True)).points[0].id == record.id
    finally:
        server.stop()
