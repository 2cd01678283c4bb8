// HNSW search: greedy descent through the upper layers and the beam search of Algorithm 2,
// with the layer-0 neighbour scan batched into one kernel call per expanded node.
#include "hnsw_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
// Search contexts: reused through a free list so visited tags and heaps are allocated once per
// thread, not once per search.

static nn_context *context_create(const nn_hnsw *h) {
    nn_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    size_t m0 = h->m0 + 1;  // reverse-link pruning holds Mmax0 links plus the newcomer
    ctx->selected = malloc(m0 * sizeof(nn_scored));
    ctx->pruned = malloc(m0 * sizeof(nn_scored));
    ctx->batch_ids = malloc(m0 * sizeof(uint32_t));
    ctx->batch_rows = malloc(m0 * sizeof(float *));
    ctx->batch_distances = malloc(m0 * sizeof(float));
    ctx->query = malloc(h->dim * sizeof(float));
    if (!ctx->selected || !ctx->pruned || !ctx->batch_ids || !ctx->batch_rows ||
        !ctx->batch_distances || !ctx->query) {
        nn_context_free(ctx);
        return NULL;
    }
    return ctx;
}

void nn_context_free(nn_context *ctx) {
    if (!ctx) return;
    free(ctx->visited);
    free(ctx->candidates);
    free(ctx->results);
    free(ctx->selected);
    free(ctx->pruned);
    free(ctx->batch_ids);
    free(ctx->batch_rows);
    free(ctx->batch_distances);
    free(ctx->query);
    free(ctx);
}

// Makes room for `nodes` visited tags and starts a new epoch; tags are cleared only when the
// 16-bit epoch wraps (or the array grows).
static bool context_prepare(nn_context *ctx, size_t nodes) {
    if (ctx->visited_capacity < nodes) {
        size_t capacity = nodes + nodes / 2 + 1024;
        uint16_t *visited = calloc(capacity, sizeof(uint16_t));
        if (!visited) return false;
        free(ctx->visited);
        ctx->visited = visited;
        ctx->visited_capacity = capacity;
        ctx->epoch = 0;
    }
    if (++ctx->epoch == 0) {
        memset(ctx->visited, 0, ctx->visited_capacity * sizeof(uint16_t));
        ctx->epoch = 1;
    }
    return true;
}

static bool reserve_scored(nn_scored **items, size_t *capacity, size_t needed) {
    if (needed <= *capacity) return true;
    if (needed > SIZE_MAX / 2 / sizeof(nn_scored)) return false;  // the doubling below would overflow
    size_t grown = *capacity ? *capacity : 64;
    while (grown < needed) grown *= 2;
    nn_scored *more = realloc(*items, grown * sizeof(nn_scored));
    if (!more) return false;
    *items = more;
    *capacity = grown;
    return true;
}

nn_context *nn_context_acquire(const nn_hnsw *h, size_t nodes) {
    nn_hnsw *mutable = (nn_hnsw *)h;  // the free list is the only state a search changes
    pthread_mutex_lock(&mutable->contexts_lock);
    nn_context *ctx = mutable->free_contexts;
    if (ctx) mutable->free_contexts = ctx->next;
    pthread_mutex_unlock(&mutable->contexts_lock);
    if (!ctx && !(ctx = context_create(h))) return NULL;
    if (!context_prepare(ctx, nodes)) {
        nn_context_release(h, ctx);
        return NULL;
    }
    memset(&ctx->stats, 0, sizeof ctx->stats);
    return ctx;
}

void nn_context_release(const nn_hnsw *h, nn_context *ctx) {
    nn_hnsw *mutable = (nn_hnsw *)h;
    pthread_mutex_lock(&mutable->contexts_lock);
    ctx->next = mutable->free_contexts;
    mutable->free_contexts = ctx;
    pthread_mutex_unlock(&mutable->contexts_lock);
}

// ---------------------------------------------------------------------------------------------

// Gathers the neighbours of `node` on `level` that are below `limit` and, when `visited` is
// set, not yet visited (marking them); then computes all their distances in one kernel call.
// Returns how many there are, in ctx->batch_ids / batch_distances.
static size_t scan_neighbours(const nn_hnsw *h, const nn_blocks *b, nn_context *ctx, const float *q,
                              uint32_t node, uint32_t level, size_t limit, bool visited) {
    _Atomic uint32_t *count;
    _Atomic uint32_t *links = nn_links(h, b, node, level, &count);
    size_t n = atomic_load_explicit(count, memory_order_acquire);
    size_t cap = level == 0 ? h->m0 : h->m;
    if (n > cap) n = cap;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = atomic_load_explicit(&links[i], memory_order_acquire);
        if (id >= limit) continue;  // inserted after this search began
        if (visited) {
            if (ctx->visited[id] == ctx->epoch) continue;
            ctx->visited[id] = ctx->epoch;
        }
        ctx->batch_ids[m] = id;
        ctx->batch_rows[m] = nn_vector(h, b, id);
        __builtin_prefetch(ctx->batch_rows[m], 0, 3);  // start every row's first line now
        m++;
    }
    if (m) h->distance_many(q, ctx->batch_rows, m, h->dim, ctx->batch_distances);
    ctx->stats.distances += m;
    ctx->stats.hops++;
    return m;
}

// Greedy search with ef = 1 from `from_level` down to (but not including) `to_level`: on each
// layer, move to the closest neighbour until none is closer (Algorithm 5, lines 5-7).
nn_scored nn_greedy_descent(const nn_hnsw *h, const nn_blocks *b, nn_context *ctx, const float *q,
                            nn_scored current, uint32_t from_level, uint32_t to_level, size_t limit) {
    for (uint32_t level = from_level; level > to_level; level--) {
        bool moved = true;
        while (moved) {
            moved = false;
            size_t m = scan_neighbours(h, b, ctx, q, current.id, level, limit, false);
            for (size_t i = 0; i < m; i++) {
                nn_scored candidate = {ctx->batch_distances[i], ctx->batch_ids[i]};
                if (nn_after(current, candidate)) {
                    current = candidate;
                    moved = true;
                }
            }
        }
    }
    return current;
}

static inline bool allowed(const nn_hnsw *h, const nn_blocks *b, const nn_allow *allow, uint32_t node) {
    if (!allow) return true;
    uint64_t key = allow->by_id ? nn_header(h, b, node)->id : node;
    return key < allow->size && (allow->bits[key >> 6] >> (key & 63)) & 1;
}

// SEARCH-LAYER (Algorithm 2) from one entry point. Leaves W, the `ef` closest found, as a
// max-heap in ctx->results and returns its size (NN_SEARCH_FAILED when memory ran out).
// With `allow`, only nodes whose bit is set enter W; the others still guide the search.
size_t nn_search_layer(const nn_hnsw *h, const nn_blocks *b, nn_context *ctx, const float *q,
                       nn_scored entry, size_t ef, uint32_t level, size_t limit, const nn_allow *allow) {
    if (!reserve_scored(&ctx->results, &ctx->results_capacity, ef + 1) ||
        !reserve_scored(&ctx->candidates, &ctx->candidates_capacity, ef + h->m0 + 1))
        return NN_SEARCH_FAILED;
    if (!context_prepare(ctx, 0)) return NN_SEARCH_FAILED;  // a fresh epoch for this layer
    nn_heap candidates = nn_heap_over(ctx->candidates, ctx->candidates_capacity);
    nn_heap results = nn_heap_over(ctx->results, ef);
    // Removed nodes still guide the search but never enter W. Checking costs a cache line per
    // candidate, so it is skipped while nothing is removed.
    bool any_removed = atomic_load_explicit(&((nn_hnsw *)h)->removed, memory_order_relaxed) > 0;
    ctx->visited[entry.id] = ctx->epoch;
    nn_heap_push(&candidates, entry, false);
    if (allowed(h, b, allow, entry.id) && (!any_removed || !nn_is_removed(h, b, entry.id)))
        nn_heap_push(&results, entry, true);

    while (candidates.size) {
        nn_scored closest = nn_heap_pop(&candidates, false);
        if (results.size == ef && nn_after(closest, results.items[0])) break;  // all of W is closer
        size_t m = scan_neighbours(h, b, ctx, q, closest.id, level, limit, true);
        for (size_t i = 0; i < m; i++) {
            nn_scored e = {ctx->batch_distances[i], ctx->batch_ids[i]};
            if (results.size < ef || nn_after(results.items[0], e)) {
                if (candidates.size == candidates.capacity) {
                    if (!reserve_scored(&ctx->candidates, &ctx->candidates_capacity, 2 * candidates.capacity)) break;
                    candidates.items = ctx->candidates;
                    candidates.capacity = ctx->candidates_capacity;
                }
                nn_heap_push(&candidates, e, false);
                if (allowed(h, b, allow, e.id) && (!any_removed || !nn_is_removed(h, b, e.id)))
                    nn_topk_offer(&results, e);
            }
        }
    }
    return results.size;
}

// ---------------------------------------------------------------------------------------------

static void write_empty(size_t k, uint64_t *ids, float *distances, size_t from) {
    for (size_t i = from; i < k; i++) {
        ids[i] = NN_NO_ID;
        distances[i] = INFINITY;
    }
}

// The query as the kernels expect it: normalized into ctx->query under cosine.
static const float *prepared_query(const nn_hnsw *h, nn_context *ctx, const float *query) {
    if (h->params.metric != NN_METRIC_COSINE) return query;
    memcpy(ctx->query, query, h->dim * sizeof(float));
    nn_normalize(ctx->query, h->dim);
    return ctx->query;
}

// Writes the first k of ctx->results (sorted) as external ids, padding with empty slots.
static void write_results(const nn_hnsw *h, const nn_blocks *b, const nn_context *ctx, size_t found,
                          size_t k, uint64_t *ids, float *distances) {
    size_t n = found < k ? found : k;
    for (size_t i = 0; i < n; i++) {
        ids[i] = nn_header(h, b, ctx->results[i].id)->id;
        distances[i] = ctx->results[i].distance;
    }
    write_empty(k, ids, distances, n);
}

static nn_status search(const nn_hnsw *h, const float *query, size_t k, size_t ef, const nn_allow *allow,
                        uint64_t *ids, float *distances, nn_hnsw_stats *stats) {
    if (k == 0 || k > NN_HNSW_MAX_EF || ef > NN_HNSW_MAX_EF) return NN_ERR_ARGUMENT;
    if (ef < k) ef = k;  // documented: a beam narrower than k could not return k results
    if (stats) memset(stats, 0, sizeof *stats);
    uint64_t entry = atomic_load_explicit(&((nn_hnsw *)h)->entry, memory_order_acquire);
    if (entry == NN_NO_ENTRY) {
        write_empty(k, ids, distances, 0);
        return NN_OK;
    }
    // Order matters: the count, then the directory, which was published before that count.
    size_t limit = atomic_load_explicit(&((nn_hnsw *)h)->count, memory_order_acquire);
    const nn_blocks *b = nn_blocks_now(h);
    nn_context *ctx = nn_context_acquire(h, limit);
    if (!ctx) return NN_ERR_NO_MEMORY;

    const float *q = prepared_query(h, ctx, query);
    uint32_t top = (uint32_t)(entry >> 32), start = (uint32_t)entry;
    nn_scored current = {h->distance(q, nn_vector(h, b, start), h->dim), start};
    ctx->stats.distances++;
    current = nn_greedy_descent(h, b, ctx, q, current, top, 0, limit);
    size_t found = nn_search_layer(h, b, ctx, q, current, ef, 0, limit, allow);
    nn_status status = NN_OK;
    if (found == NN_SEARCH_FAILED) {
        status = NN_ERR_NO_MEMORY;
        found = 0;
    }
    nn_sort_results(ctx, found);
    write_results(h, b, ctx, found, k, ids, distances);
    if (stats) *stats = ctx->stats;
    nn_context_release(h, ctx);
    return status;
}

nn_status nn_hnsw_search(const nn_hnsw *h, const float *query, size_t k, size_t ef, uint64_t *ids,
                         float *distances, nn_hnsw_stats *stats) {
    return search(h, query, k, ef, NULL, ids, distances, stats);
}

nn_status nn_hnsw_search_filtered(const nn_hnsw *h, const float *query, size_t k, size_t ef,
                                  const uint64_t *allow, size_t allow_nodes, uint64_t *ids,
                                  float *distances, nn_hnsw_stats *stats) {
    nn_allow bits = {allow, allow_nodes, false};
    return search(h, query, k, ef, &bits, ids, distances, stats);
}

nn_status nn_hnsw_search_filtered_ids(const nn_hnsw *h, const float *query, size_t k, size_t ef,
                                      const uint64_t *allow, size_t allow_ids, uint64_t *ids,
                                      float *distances, nn_hnsw_stats *stats) {
    nn_allow bits = {allow, allow_ids, true};
    return search(h, query, k, ef, &bits, ids, distances, stats);
}

nn_status nn_hnsw_search_nodes(const nn_hnsw *h, const float *query, size_t k,
                               const uint32_t *nodes, size_t n, uint64_t *ids, float *distances) {
    if (k == 0) return NN_ERR_ARGUMENT;
    size_t limit = atomic_load_explicit(&((nn_hnsw *)h)->count, memory_order_acquire);
    const nn_blocks *b = nn_blocks_now(h);
    nn_context *ctx = nn_context_acquire(h, 0);
    if (!ctx) return NN_ERR_NO_MEMORY;
    nn_status status = NN_OK;
    if (!reserve_scored(&ctx->results, &ctx->results_capacity, k)) {
        status = NN_ERR_NO_MEMORY;
        n = 0;
    }
    const float *q = prepared_query(h, ctx, query);
    bool any_removed = atomic_load_explicit(&((nn_hnsw *)h)->removed, memory_order_relaxed) > 0;
    nn_heap results = nn_heap_over(ctx->results, k);
    // Scored in chunks of the scan buffers' size, so the kernel prefetches ahead as in a scan.
    size_t chunk = h->m0;
    for (size_t i = 0; i < n;) {
        size_t m = 0;
        for (; i < n && m < chunk; i++) {
            uint32_t node = nodes[i];
            if (node >= limit || (any_removed && nn_is_removed(h, b, node))) continue;
            ctx->batch_ids[m] = node;
            ctx->batch_rows[m++] = nn_vector(h, b, node);
        }
        if (m) h->distance_many(q, ctx->batch_rows, m, h->dim, ctx->batch_distances);
        for (size_t j = 0; j < m; j++)
            nn_topk_offer(&results, (nn_scored){ctx->batch_distances[j], ctx->batch_ids[j]});
    }
    nn_sort_results(ctx, results.size);
    write_results(h, b, ctx, results.size, k, ids, distances);
    nn_context_release(h, ctx);
    return status;
}

typedef struct batch_job {
    const nn_hnsw *h;
    const float *queries;
    size_t stride, k, ef;
    uint64_t *ids;
    float *distances;
    nn_hnsw_stats *per_query;
    _Atomic int status;
} batch_job;

static void batch_task(void *raw, size_t q, size_t worker) {
    (void)worker;
    batch_job *job = raw;
    nn_status s = nn_hnsw_search(job->h, job->queries + q * job->stride, job->k, job->ef,
                                 job->ids + q * job->k, job->distances + q * job->k,
                                 job->per_query ? &job->per_query[q] : NULL);
    if (s != NN_OK) atomic_store(&job->status, s);
}

nn_status nn_hnsw_search_batch(const nn_hnsw *h, nn_pool *pool, const float *queries, size_t nq,
                               size_t stride, size_t k, size_t ef, uint64_t *ids, float *distances,
                               nn_hnsw_stats *stats) {
    if (k == 0 || stride < h->dim) return NN_ERR_ARGUMENT;
    batch_job job = {h, queries, stride, k, ef, ids, distances, NULL, NN_OK};
    if (stats) {
        job.per_query = calloc(nq ? nq : 1, sizeof(nn_hnsw_stats));
        if (!job.per_query) return NN_ERR_NO_MEMORY;
    }
    nn_pool_run(pool, nq, batch_task, &job);
    if (stats) {
        memset(stats, 0, sizeof *stats);
        for (size_t q = 0; q < nq; q++) {
            stats->distances += job.per_query[q].distances;
            stats->hops += job.per_query[q].hops;
        }
        free(job.per_query);
    }
    return (nn_status)atomic_load(&job.status);
}
