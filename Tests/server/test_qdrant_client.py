"""`nearest serve` driven by the real qdrant-client (pinned in requirements.txt), with the
client's own local mode (`QdrantClient(":memory:")`, exact) as the reference for filters and
scores."""
import json
import random
import signal
import uuid

import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from conftest import Server

DISTANCES = [models.Distance.COSINE, models.Distance.DOT, models.Distance.EUCLID]


def vectors(count, dim, seed):
    rng = random.Random(seed)
    return [[rng.uniform(-1, 1) for _ in range(dim)] for _ in range(count)]


def payload(i, rng):
    """Keywords, integers, floats, booleans, arrays, nested objects, nulls and missing fields."""
    p = {"city": rng.choice(["Berlin", "London", "Paris", "Rome"]), "n": i % 17, "score": round(rng.uniform(0, 10), 3)}
    if i % 3 == 0:
        p["tags"] = rng.sample(["a", "b", "c", "d"], rng.randint(0, 3))
    if i % 4 == 0:
        p["flag"] = i % 8 == 0
    if i % 5 == 0:
        p["maybe"] = None
    if i % 7 == 0:
        p["meta"] = {"k": i % 5, "who": rng.choice(["bot", "human"])}
    if i % 11 == 0:
        p["ints"] = [i % 3, (i + 1) % 4]
    if i % 3 == 1:  # arrays of objects, for nested conditions
        p["items"] = [{"sku": rng.choice("abc"), "qty": rng.randint(0, 5)} for _ in range(rng.randint(0, 3))]
    return p


def both(dim, distance, points):
    """Our server's collection and the local reference, holding the same points."""
    local = QdrantClient(":memory:")
    local.create_collection("c", vectors_config=models.VectorParams(size=dim, distance=distance))
    local.upsert("c", points=points)
    return local


# ---- a RAG tutorial's flow

def test_rag_flow(client):
    """create_collection, upsert, query_points, scroll, retrieve, count, as tutorials write them."""
    texts = [f"document {i} about {topic}" for i, topic in enumerate(["cats", "dogs", "birds", "fish"] * 25)]
    embeddings = vectors(len(texts), 32, seed=1)
    assert not client.collection_exists("docs")
    client.create_collection("docs", vectors_config=models.VectorParams(size=32, distance=models.Distance.COSINE))
    assert client.collection_exists("docs")
    assert [c.name for c in client.get_collections().collections] == ["docs"]
    result = client.upsert("docs", points=[
        models.PointStruct(id=i, vector=embeddings[i], payload={"text": t, "topic": t.split()[-1]}) for i, t in enumerate(texts)])
    assert result.status == models.UpdateStatus.COMPLETED
    assert client.count("docs").count == 100
    hits = client.query_points("docs", query=embeddings[42], limit=5, with_payload=True).points
    assert hits[0].id == 42 and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].payload == {"text": texts[42], "topic": texts[42].split()[-1]}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    filtered = client.query_points("docs", query=embeddings[42], limit=5, query_filter=models.Filter(
        must=[models.FieldCondition(key="topic", match=models.MatchValue(value="dogs"))]), with_payload=True).points
    assert len(filtered) == 5 and all(h.payload["topic"] == "dogs" for h in filtered)
    # Every point exactly once across the scroll's pages.
    seen, offset = [], None
    while True:
        page, offset = client.scroll("docs", limit=7, offset=offset, with_payload=False)
        seen += [p.id for p in page]
        if offset is None:
            break
    assert sorted(seen) == list(range(100))
    records = client.retrieve("docs", ids=[3, 99, 1000], with_vectors=True)
    assert [r.id for r in records] == [3, 99]
    info = client.get_collection("docs")
    assert info.points_count == 100 and info.config.params.vectors.size == 32


# ---- scores and filters against the client's local mode

@pytest.mark.parametrize("distance", DISTANCES)
def test_scores_match_local_mode(client, distance):
    dim, count = 8, 300
    rng = random.Random(5)
    points = [models.PointStruct(id=i, vector=v, payload=payload(i, rng)) for i, v in enumerate(vectors(count, dim, seed=2))]
    local = both(dim, distance, points)
    client.create_collection("c", vectors_config=models.VectorParams(size=dim, distance=distance))
    client.upsert("c", points=points)
    for q in vectors(20, dim, seed=3):
        ours = client.query_points("c", query=q, limit=10, search_params=models.SearchParams(exact=True), with_vectors=True).points
        theirs = local.query_points("c", query=q, limit=10, with_vectors=True).points
        assert [p.id for p in ours] == [p.id for p in theirs]
        assert [p.score for p in ours] == pytest.approx([p.score for p in theirs], rel=1e-4, abs=1e-4)
        assert ours[0].vector == pytest.approx(theirs[0].vector, rel=1e-5, abs=1e-6), "Cosine vectors come back normalized"
        # The graph (ef 128) finds the same on so small a set; a threshold cuts as Qdrant's does.
        graph = client.query_points("c", query=q, limit=10, search_params=models.SearchParams(hnsw_ef=128)).points
        assert [p.id for p in graph] == [p.id for p in theirs]
        cut = (theirs[4].score + theirs[5].score) / 2  # between two scores: no tie decided by rounding
        kept = client.query_points("c", query=q, limit=10, score_threshold=cut).points
        expected = local.query_points("c", query=q, limit=10, score_threshold=cut).points
        assert [p.id for p in kept] == [p.id for p in expected] == [p.id for p in theirs[:5]]
    # offset, and a query by a point's id (which leaves that point out)
    q = vectors(1, dim, seed=4)[0]
    assert [p.id for p in client.query_points("c", query=q, limit=5, offset=3).points] == \
        [p.id for p in local.query_points("c", query=q, limit=5, offset=3).points]
    assert [p.id for p in client.query_points("c", query=17, limit=5).points] == \
        [p.id for p in local.query_points("c", query=17, limit=5).points]


def random_condition(rng, depth=0):
    key = rng.choice(["city", "n", "score", "tags", "flag", "maybe", "meta.k", "meta.who", "ints", "absent", "tags[]"])
    kind = rng.randrange(12 if depth < 2 else 9)
    if kind == 0:
        value = {"city": rng.choice(["Berlin", "Rome", "Oslo"]), "n": rng.randrange(18), "flag": rng.random() < 0.5,
                 "meta.k": rng.randrange(5), "meta.who": "bot", "tags": "a", "tags[]": "b", "ints": rng.randrange(4)}.get(key, "x")
        return models.FieldCondition(key=key, match=models.MatchValue(value=value))
    if kind == 1:
        if key in ("n", "meta.k", "ints"):
            return models.FieldCondition(key=key, match=models.MatchAny(any=rng.sample(range(6), 2)))
        return models.FieldCondition(key=key, match=models.MatchAny(any=rng.sample(["Berlin", "Rome", "a", "c", "bot"], 2)))
    if kind == 2:
        if key in ("n", "meta.k", "ints"):
            return models.FieldCondition(key=key, match=models.MatchExcept(**{"except": rng.sample(range(6), 2)}))
        return models.FieldCondition(key=key, match=models.MatchExcept(**{"except": rng.sample(["Berlin", "Rome", "a", "b", "bot"], 2)}))
    if kind == 3:
        low = rng.uniform(-1, 12)
        return models.FieldCondition(key=rng.choice(["n", "score", "meta.k", "ints", "city"]),
                                     range=models.Range(gte=low, lt=low + rng.uniform(0, 8)))
    if kind == 4:
        return models.IsEmptyCondition(is_empty=models.PayloadField(key=key))
    if kind == 5:
        return models.IsNullCondition(is_null=models.PayloadField(key=key))
    if kind == 6:
        return models.HasIdCondition(has_id=rng.sample(range(420), rng.randint(0, 40)))
    if kind == 7:
        low = rng.randint(0, 3)
        return models.FieldCondition(key=rng.choice(["tags", "ints", "city", "maybe", "absent", "meta"]),
                                     values_count=models.ValuesCount(gte=low, lt=low + rng.randint(1, 3)))
    if kind == 8:
        return models.NestedCondition(nested=models.Nested(key="items", filter=models.Filter(must=[
            models.FieldCondition(key="sku", match=models.MatchValue(value=rng.choice(["a", "b", "c"]))),
            models.FieldCondition(key="qty", range=models.Range(gte=rng.randint(0, 4)))])))
    return random_filter(rng, depth + 1)


def random_filter(rng, depth=0):
    clauses = {}
    for clause in rng.sample(["must", "should", "must_not", "min_should"], rng.randint(1, 2)):
        if clause == "min_should":
            conditions = [random_condition(rng, depth) for _ in range(rng.randint(1, 4))]
            clauses[clause] = models.MinShould(conditions=conditions, min_count=rng.randint(1, len(conditions)))
            continue
        clauses[clause] = [random_condition(rng, depth) for _ in range(rng.randint(0, 3) if clause == "should" else 1)]
    return models.Filter(**clauses)


def test_filters_match_local_mode(client):
    """count, scroll and filtered exact search agree with local mode on 300 random filters."""
    dim, count = 4, 400
    rng = random.Random(7)
    points = [models.PointStruct(id=i, vector=v, payload=payload(i, rng)) for i, v in enumerate(vectors(count, dim, seed=8))]
    local = both(dim, models.Distance.EUCLID, points)
    client.create_collection("c", vectors_config=models.VectorParams(size=dim, distance=models.Distance.EUCLID))
    client.upsert("c", points=points)
    q = [0.1, -0.2, 0.3, 0.0]
    for _ in range(300):
        f = random_filter(rng)
        expected = sorted(p.id for p in local.scroll("c", scroll_filter=f, limit=count)[0])
        assert client.count("c", count_filter=f).count == len(expected), f
        assert sorted(p.id for p in client.scroll("c", scroll_filter=f, limit=count)[0]) == expected, f
        ours = client.query_points("c", query=q, query_filter=f, limit=5, search_params=models.SearchParams(exact=True)).points
        theirs = local.query_points("c", query=q, query_filter=f, limit=5).points
        assert [p.id for p in ours] == [p.id for p in theirs], f


def test_payload_changes_match_local_mode(client):
    dim = 4
    rng = random.Random(9)
    points = [models.PointStruct(id=i, vector=v, payload=payload(i, rng)) for i, v in enumerate(vectors(60, dim, seed=10))]
    local = both(dim, models.Distance.DOT, points)
    client.create_collection("c", vectors_config=models.VectorParams(size=dim, distance=models.Distance.DOT))
    client.upsert("c", points=points)
    london = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="London"))])
    for c in (client, local):
        c.set_payload("c", payload={"extra": 1, "city": "Madrid"}, points=[1, 2, 3])
        c.set_payload("c", payload={"seen": True}, points=london)
        c.overwrite_payload("c", payload={"only": "this"}, points=[4])
        c.delete_payload("c", keys=["n", "meta.who"], points=[5, 7, 14])
        c.clear_payload("c", points_selector=models.FilterSelector(filter=models.Filter(
            must=[models.FieldCondition(key="n", match=models.MatchValue(value=9))])))
        c.delete("c", points_selector=[10, 11])
    ours = {r.id: r.payload for r in client.scroll("c", limit=100)[0]}
    theirs = {r.id: r.payload for r in local.scroll("c", limit=100)[0]}
    assert ours == theirs
    # the vectors stayed
    assert client.retrieve("c", ids=[1], with_vectors=True)[0].vector == pytest.approx(points[1].vector, rel=1e-6)


def test_uuid_ids_and_batch_form(client):
    ids = [str(uuid.UUID(int=random.Random(i).getrandbits(128))) for i in range(20)]
    client.create_collection("u", vectors_config=models.VectorParams(size=3, distance=models.Distance.EUCLID))
    client.upsert("u", points=models.Batch(ids=ids, vectors=vectors(20, 3, seed=11), payloads=[{"i": i} for i in range(20)]))
    got = client.retrieve("u", ids=[ids[4], ids[9]])
    assert [r.id for r in got] == [ids[4], ids[9]] and got[0].payload == {"i": 4}
    hits = client.query_points("u", query=ids[4], limit=3).points
    assert ids[4] not in [h.id for h in hits] and len(hits) == 3
    page, _ = client.scroll("u", limit=100)
    assert sorted(p.id for p in page) == sorted(ids)


def test_payload_index_and_selectors(client):
    client.create_collection("c", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE))
    client.upsert("c", points=[models.PointStruct(id=i, vector=[1, i + 1], payload={"a": i, "b": {"c": i, "d": "x"}}) for i in range(10)])
    client.create_payload_index("c", field_name="a", field_schema=models.PayloadSchemaType.INTEGER)
    schema = client.get_collection("c").payload_schema
    assert schema["a"].data_type == models.PayloadSchemaType.INTEGER and schema["a"].points == 10
    client.delete_payload_index("c", field_name="a")
    assert client.get_collection("c").payload_schema == {}
    include = client.query_points("c", query=[1, 1], limit=1, with_payload=["b.c"]).points[0].payload
    assert set(include) == {"b"} and include["b"] == {"c": include["b"]["c"]}
    exclude = client.query_points("c", query=[1, 1], limit=1, with_payload=models.PayloadSelectorExclude(exclude=["b"])).points[0].payload
    assert set(exclude) == {"a"}
    batch = client.query_batch_points("c", requests=[models.QueryRequest(query=[1, 2], limit=2),
                                                     models.QueryRequest(query=[1, 9], limit=3, with_payload=True)])
    assert [len(r.points) for r in batch] == [2, 3] and batch[0].points[0].payload is None and batch[1].points[0].payload


# ---- bad input: a 4xx that says why, and nothing changed

def expect_status(status, call):
    with pytest.raises(UnexpectedResponse) as caught:
        call()
    assert caught.value.status_code == status, caught.value.content
    return json.loads(caught.value.content)["status"]["error"]


def test_bad_input_changes_nothing(client, server):
    client.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
    client.upsert("c", points=[models.PointStruct(id=1, vector=[1, 2, 3], payload={"a": 1})])
    # a batch with one bad point stores none of it
    assert "dimension" in expect_status(400, lambda: client.upsert("c", points=[
        models.PointStruct(id=2, vector=[1, 2, 3]), models.PointStruct(id=3, vector=[1, 2])]))
    assert "zero" in expect_status(400, lambda: client.upsert("c", points=[models.PointStruct(id=4, vector=[0, 0, 0])]))
    assert client.count("c").count == 1
    with httpx.Client(base_url=server.url) as http:  # raw: the client refuses these itself
        refused = http.post("/collections/c/points/count", json={"filter": {"min_should": {"conditions": [], "min_count": 0}}})
        assert refused.status_code == 400 and "min_should" in refused.json()["status"]["error"]
        refused = http.post("/collections/c/points/count", json={"filter": {"must": [{"key": "a", "geo_radius": {}}]}})
        assert refused.status_code == 400 and "geo_radius" in refused.json()["status"]["error"]
    assert "named vectors" in expect_status(400, lambda: client.create_collection("n", vectors_config={
        "text": models.VectorParams(size=3, distance=models.Distance.COSINE),
        "image": models.VectorParams(size=4, distance=models.Distance.DOT)}))
    assert "Manhattan" in expect_status(400, lambda: client.create_collection(
        "m", vectors_config=models.VectorParams(size=3, distance=models.Distance.MANHATTAN)))
    expect_status(409, lambda: client.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT)))
    expect_status(404, lambda: client.count("missing"))
    expect_status(404, lambda: client.query_points("c", query=12345))
    assert client.delete_collection("missing") is False
    # raw HTTP: malformed JSON, a non-UUID string id, too deep a body, a bad name
    with httpx.Client(base_url=server.url) as http:
        for body in ['{"points": [', '{"points": [{"id": "not-a-uuid", "vector": [1, 2, 3]}]}',
                     '{"points": [{"id": 5, "vector": [1, 2, NaN]}]}', "[" * 100 + "]" * 100]:
            response = http.put("/collections/c/points", content=body)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["status"]["error"]
        for path, body, named in [
                ("/collections/c/points/scroll", {"limit": "ten"}, "limit"),
                ("/collections/c/points/scroll", {"limit": 0}, "limit"),
                ("/collections/c/points/scroll", {"offset": 99999}, "offset"),
                ("/collections/c/points/scroll", {"order_by": "a"}, "order_by"),
                ("/collections/c/points/query", {"query": [1, 2, 3], "with_payload": 5}, "with_payload"),
                ("/collections/c/points/query", {"query": [1, 2, 3], "prefetch": [{"query": [1, 2, 3]}]}, "prefetch"),
                ("/collections/c/points/query", {"query": {"recommend": {"positive": [1]}}}, "recommend"),
                ("/collections/c/points/query", {"query": [1, 2, 3], "using": "image"}, "image"),
                ("/collections/c/points/count", {"filter": {"must": [{"key": "a", "geo_radius": {}}]}}, "geo_radius"),
                ("/collections/c/points/count", {"filter": {"whatever": []}}, "whatever"),
                ("/collections/c/points/count", {"filter": {"must": [{"key": "a[0]", "match": {"value": 1}}]}}, "a[0]"),
                ("/collections/c/points/payload", {"payload": {"x": 1}, "points": [1], "key": "a.b"}, "key")]:
            response = http.post(path, json=body)
            assert response.status_code == 400 and named in response.json()["status"]["error"], (path, body, response.text)
        assert http.put("/collections/bad%20name", json={"vectors": {"size": 3, "distance": "Dot"}}).status_code == 400
        assert http.put("/collections/..", json={"vectors": {"size": 3, "distance": "Dot"}}).status_code in (400, 404)
    assert client.count("c").count == 1
    assert client.retrieve("c", ids=[1])[0].payload == {"a": 1}


def test_body_limit(root):
    server = Server(root, "--max-body-mib", "1").start()
    try:
        with httpx.Client(base_url=server.url) as http:
            http.put("/collections/c", json={"vectors": {"size": 3, "distance": "Dot"}}).raise_for_status()
            big = json.dumps({"points": [{"id": i, "vector": [0.5, 0.25, 0.125]} for i in range(40_000)]})
            assert len(big) > 1 << 20
            assert http.put("/collections/c/points", content=big).status_code == 413
            assert http.post("/collections/c/points/count", json={}).json()["result"]["count"] == 0
    finally:
        server.stop()


# ---- auth

def test_api_key(root):
    server = Server(root, "--api-key", "s3cret").start()
    try:
        with pytest.warns(UserWarning):  # the client warns about a key over plain http
            good = QdrantClient(url=server.url, api_key="s3cret")
            wrong = QdrantClient(url=server.url, api_key="s3cre")
        anonymous = QdrantClient(url=server.url)
        good.create_collection("c", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        assert good.collection_exists("c")
        expect_status(401, lambda: wrong.get_collections())
        expect_status(401, lambda: anonymous.get_collections())
        with httpx.Client(base_url=server.url) as http:
            assert http.get("/collections", headers={"Authorization": "Bearer s3cret"}).status_code == 200
            assert http.get("/collections", headers={"Authorization": "Bearer nope"}).status_code == 401
            assert http.get("/healthz").status_code == 200
    finally:
        server.stop()


# ---- durability and shutdown

def test_acknowledged_points_survive_kill_9(root):
    server = Server(root).start()
    client = QdrantClient(url=server.url)
    client.create_collection("c", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE))
    for batch in range(5):
        client.upsert("c", points=[models.PointStruct(id=batch * 100 + i, vector=v, payload={"b": batch})
                                   for i, v in enumerate(vectors(100, 4, seed=batch))], wait=batch % 2 == 0)
    server.stop(signal.SIGKILL)
    server = Server(root).start()
    try:
        client = QdrantClient(url=server.url)
        assert client.count("c").count == 500
        assert client.retrieve("c", ids=[401])[0].payload == {"b": 4}
        assert client.query_points("c", query=vectors(100, 4, seed=3)[7], limit=1).points[0].id == 307
    finally:
        assert server.stop(signal.SIGTERM) == 0, "SIGTERM stops the server cleanly"


def test_legacy_search_and_one_point(client, server):
    """The endpoints older clients call (`points/search` and its batch form) and `GET points/{id}`."""
    client.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    client.upsert("c", points=[models.PointStruct(id=i, vector=[1, i, -i], payload={"i": i}) for i in range(1, 30)])
    with httpx.Client(base_url=server.url) as http:
        hits = http.post("/collections/c/points/search", json={"vector": [0, 1, 0], "limit": 3, "with_payload": True}).json()["result"]
        assert [h["id"] for h in hits] == [29, 28, 27] and hits[0]["score"] == pytest.approx(29) and hits[0]["payload"] == {"i": 29}
        named = http.post("/collections/c/points/search", json={"vector": {"name": "", "vector": [0, 0, 1]}, "limit": 2,
                                                               "filter": {"must": [{"key": "i", "range": {"lt": 5}}]}}).json()["result"]
        assert [h["id"] for h in named] == [1, 2] and named[0]["payload"] is None
        batch = http.post("/collections/c/points/search/batch", json={"searches": [{"vector": [0, 1, 0], "limit": 1},
                                                                                  {"vector": [0, -1, 0], "limit": 2}]}).json()["result"]
        assert [[h["id"] for h in r] for r in batch] == [[29], [1, 2]]
        one = http.get("/collections/c/points/7").json()["result"]
        assert one == {"id": 7, "payload": {"i": 7}, "vector": [1, 7, -7]}
        assert http.get("/collections/c/points/1000").status_code == 404
        assert http.post("/collections/c/points/search", json={"vector": {"name": "image", "vector": [0, 0, 1]}}).status_code == 400
