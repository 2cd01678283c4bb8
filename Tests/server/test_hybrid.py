"""Hybrid search through the real qdrant-client: a text index declared on a payload field,
document (BM25) queries, and prefetch + fusion (RRF, DBSF) checked against the client's own
fusion (what its local mode runs, the same formulas as Qdrant's server) applied to the two
single-mode lists the same server returns."""
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse
from qdrant_client.hybrid.fusion import distribution_based_score_fusion, reciprocal_rank_fusion

TEXTS = [
    "swift vector database for retrieval",
    "a fast vector index written in C",
    "cooking pears and apples",
    "database administration handbook",
    "red apples in a vector of fruit baskets",
    "retrieval augmented generation with a database",
    "nothing relevant at all",
    "pear cider recipes",
]


def bm25(text):
    return models.Document(text=text, model="qdrant/bm25")


@pytest.fixture
def hybrid(server):
    # cloud_inference: the client sends documents as they are, for the server to embed (here:
    # the text index answers them); without it the client would embed them itself (fastembed).
    client = QdrantClient(url=server.url, timeout=60, cloud_inference=True)
    client.create_collection("docs", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
    client.upsert("docs", points=[
        models.PointStruct(id=i, vector=[1.0, (i % 4) / 4, (i % 3) / 3], payload={"text": t, "even": i % 2 == 0})
        for i, t in enumerate(TEXTS)])
    client.create_payload_index("docs", "text", field_schema=models.TextIndexParams(
        type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.WORD, lowercase=True))
    return client


def ranked(points):
    return [(p.id, p.score) for p in points]


def test_document_queries_rank_by_bm25(hybrid):
    hits = hybrid.query_points("docs", query=bm25("vector database"), using="bm25", limit=10).points
    ids = [p.id for p in hits]
    # Both words: 0 (6 words) before 5 (also both? no: "database" only) ...; every hit holds a word.
    assert set(ids) == {0, 1, 3, 4, 5}
    assert ids[0] == 0  # the only text with both words
    assert all(a.score >= b.score > 0 for a, b in zip(hits, hits[1:]))
    # Stemmed: "pears" finds "pear" and "pears".
    assert {p.id for p in hybrid.query_points("docs", query=bm25("Pears"), limit=10).points} == {2, 7}


@pytest.mark.parametrize("fusion", [models.Fusion.RRF, models.Fusion.DBSF])
def test_fusion_matches_the_formula_over_the_single_lists(hybrid, fusion):
    vector, words, depth = [1.0, 0.3, 0.6], "vector database retrieval", 8
    dense = hybrid.query_points("docs", query=vector, limit=depth).points
    text = hybrid.query_points("docs", query=bm25(words), limit=depth).points
    if fusion == models.Fusion.RRF:
        reference = reciprocal_rank_fusion([dense, text], limit=5)
    else:
        reference = distribution_based_score_fusion([dense, text], limit=5)
    fused = hybrid.query_points("docs", prefetch=[
        models.Prefetch(query=vector, limit=depth),
        models.Prefetch(query=bm25(words), using="bm25", limit=depth),
    ], query=models.FusionQuery(fusion=fusion), limit=5, with_payload=True).points
    # Equal scores may come in either order: compare scores in order, and ids as sets per score.
    assert [p.score for p in fused] == pytest.approx([p.score for p in reference], rel=1e-4, abs=1e-6)
    by_score = lambda points: sorted((round(p.score, 5), p.id) for p in points)
    assert by_score(fused) == by_score(reference)
    assert fused[0].payload["text"] == TEXTS[fused[0].id]


def test_filters_apply_to_both_lists_and_rrf_k(hybrid):
    even = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
    fused = hybrid.query_points("docs", prefetch=[
        models.Prefetch(query=[1.0, 0.25, 0.33], limit=8),
        models.Prefetch(query=bm25("vector database"), using="bm25", limit=8),
    ], query=models.FusionQuery(fusion=models.Fusion.RRF), query_filter=even, limit=8).points
    assert fused and all(p.id % 2 == 0 for p in fused)
    # {"rrf": {"k": 1}} (newer clients' RrfQuery): Qdrant's 1 / (k + rank - 1), 1 for the best.
    raw = hybrid.http.search_api.query_points("docs", query_request=models.QueryRequest(
        prefetch=[models.Prefetch(query=bm25("vector database"), using="bm25", limit=8)],
        query=models.RrfQuery(rrf=models.Rrf(k=1)), limit=2)).result.points
    assert raw[0].id == 0 and [p.score for p in raw] == pytest.approx([1, 1 / 2])


def test_match_text_filters_on_every_word(hybrid):
    def matching(words, **kw):
        f = models.Filter(must=[models.FieldCondition(key="text", match=models.MatchText(text=words))])
        points, _ = hybrid.scroll("docs", scroll_filter=f, limit=100)
        assert hybrid.count("docs", count_filter=f).count == len(points)
        return sorted(p.id for p in points)

    assert matching("vector database") == [0]
    assert matching("DATABASES") == [0, 3, 5]          # case-folded and stemmed
    assert matching("pear") == [2, 7]
    assert matching("database unknownword") == []
    # Inside a search, and on another field it is refused.
    hits = hybrid.query_points("docs", query=[1.0, 0.0, 0.0], limit=10, query_filter=models.Filter(
        must=[models.FieldCondition(key="text", match=models.MatchText(text="apples"))])).points
    assert sorted(p.id for p in hits) == [2, 4]
    with pytest.raises(UnexpectedResponse) as caught:
        hybrid.count("docs", count_filter=models.Filter(must=[models.FieldCondition(key="even", match=models.MatchText(text="x"))]))
    assert caught.value.status_code == 400 and "text index" in str(caught.value)


def test_bad_hybrid_requests_are_400_and_the_index_can_be_dropped(hybrid, server):
    def refused(**query):
        with pytest.raises(UnexpectedResponse) as caught:
            hybrid.query_points("docs", **query)
        assert caught.value.status_code == 400
        return str(caught.value)

    assert "fusion needs prefetch" in refused(query=models.FusionQuery(fusion=models.Fusion.RRF))
    assert "prefetch" in refused(prefetch=[models.Prefetch(query=bm25("x"), filter=models.Filter(must=[]))],
                                 query=models.FusionQuery(fusion=models.Fusion.RRF))
    assert "no words" in refused(query=bm25("  --  "))
    with pytest.raises(UnexpectedResponse) as caught:  # a second text field
        hybrid.create_payload_index("docs", "other", field_schema=models.TextIndexParams(type=models.TextIndexType.TEXT))
    assert caught.value.status_code == 400
    # A payload whose text field is not text is refused; what was stored stays.
    with pytest.raises(UnexpectedResponse) as caught:
        hybrid.upsert("docs", points=[models.PointStruct(id=100, vector=[1, 0, 0], payload={"text": 5})])
    assert caught.value.status_code == 400
    assert hybrid.count("docs").count == len(TEXTS)
    hybrid.delete_payload_index("docs", "text")
    assert "no text index" in refused(query=bm25("vector"))
