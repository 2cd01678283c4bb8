// HNSW insertion: INSERT (Algorithm 1) with SELECT-NEIGHBORS-HEURISTIC (Algorithm 4), reverse
// links pruned back to Mmax / Mmax0 with the same heuristic.
#include "hnsw_internal.h"

#include <stdlib.h>
#include <string.h>

// Algorithm 4: walk the candidates nearest first and keep one only if it is closer to the base
// than to every neighbour kept so far, which spreads links over directions instead of
// spending them all on one dense cluster. `candidates` must be sorted nearest first.
static size_t select_heuristic(const nn_hnsw *h, const nn_blocks *b, nn_context *ctx,
                               const nn_scored *candidates, size_t n, size_t m, nn_scored *out) {
    size_t kept = 0, pruned = 0;
    for (size_t i = 0; i < n && kept < m; i++) {
        nn_scored e = candidates[i];
        const float *v = nn_vector(h, b, e.id);
        bool good = true;
        for (size_t j = 0; j < kept; j++) {
            if (h->distance(v, nn_vector(h, b, out[j].id), h->dim) < e.distance) {
                good = false;
                break;
            }
        }
        if (good) out[kept++] = e;
        else if (pruned < m) ctx->pruned[pruned++] = e;  // at most m are ever used
    }
    if (h->params.keep_pruned)
        for (size_t i = 0; i < pruned && kept < m; i++) out[kept++] = ctx->pruned[i];
    return kept;
}

// Adds the link `neighbour` -> `node` on `level`; when the list is full, prunes the list plus the
// newcomer back to its cap with the heuristic (the paper's "shrink connections").
static void link_back(const nn_hnsw *h, const nn_blocks *b, nn_context *ctx, uint32_t neighbour,
                      uint32_t node, float distance, uint32_t level) {
    size_t cap = level == 0 ? h->m0 : h->m;
    nn_node *header = nn_header(h, b, neighbour);
    _Atomic uint32_t *count;
    _Atomic uint32_t *links = nn_links(h, b, neighbour, level, &count);
    nn_node_lock(header);
    size_t n = atomic_load_explicit(count, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        if (atomic_load_explicit(&links[i], memory_order_relaxed) == node) {  // already linked
            nn_node_unlock(header);
            return;
        }
    }
    if (n < cap) {
        atomic_store_explicit(&links[n], node, memory_order_release);
        atomic_store_explicit(count, (uint32_t)(n + 1), memory_order_release);
        nn_node_unlock(header);
        return;
    }
    // Full: score the current links from the neighbour's point of view, in one batched call.
    const float *base = nn_vector(h, b, neighbour);
    for (size_t i = 0; i < n; i++) {
        ctx->batch_ids[i] = atomic_load_explicit(&links[i], memory_order_relaxed);
        ctx->batch_rows[i] = nn_vector(h, b, ctx->batch_ids[i]);
    }
    h->distance_many(base, ctx->batch_rows, n, h->dim, ctx->batch_distances);
    nn_scored *candidates = ctx->selected;  // n + 1 <= Mmax0 + 1 slots
    for (size_t i = 0; i < n; i++) candidates[i] = (nn_scored){ctx->batch_distances[i], ctx->batch_ids[i]};
    candidates[n] = (nn_scored){distance, node};
    nn_scored_sort(candidates, n + 1);
    nn_scored kept[n + 1];
    size_t m = select_heuristic(h, b, ctx, candidates, n + 1, cap, kept);
    for (size_t i = 0; i < m; i++) atomic_store_explicit(&links[i], kept[i].id, memory_order_release);
    atomic_store_explicit(count, (uint32_t)m, memory_order_release);
    nn_node_unlock(header);
}

// Sets `node`'s own links on `level`.
static void set_links(const nn_hnsw *h, const nn_blocks *b, uint32_t node, uint32_t level,
                      const nn_scored *neighbours, size_t n) {
    nn_node *header = nn_header(h, b, node);
    _Atomic uint32_t *count;
    _Atomic uint32_t *links = nn_links(h, b, node, level, &count);
    nn_node_lock(header);
    for (size_t i = 0; i < n; i++) atomic_store_explicit(&links[i], neighbours[i].id, memory_order_release);
    atomic_store_explicit(count, (uint32_t)n, memory_order_release);
    nn_node_unlock(header);
}

// INSERT (Algorithm 1) of a published node whose vector, id and level are already in place.
void nn_insert_node(nn_hnsw *h, nn_context *ctx, uint32_t node, size_t limit) {
    const nn_blocks *b = nn_blocks_now(h);
    const float *q = nn_vector(h, b, node);
    uint32_t level = nn_header(h, b, node)->level;

    uint64_t entry = atomic_load_explicit(&h->entry, memory_order_acquire);
    if (entry == NN_NO_ENTRY) {
        pthread_mutex_lock(&h->entry_lock);
        entry = atomic_load_explicit(&h->entry, memory_order_acquire);
        if (entry == NN_NO_ENTRY) {  // the first node: nothing to link to
            atomic_store_explicit(&h->entry, ((uint64_t)level << 32) | node, memory_order_release);
            pthread_mutex_unlock(&h->entry_lock);
            return;
        }
        pthread_mutex_unlock(&h->entry_lock);
    }
    uint32_t top = (uint32_t)(entry >> 32), start = (uint32_t)entry;
    nn_scored current = {h->distance(q, nn_vector(h, b, start), h->dim), start};
    current = nn_greedy_descent(h, b, ctx, q, current, top, level, limit);

    for (uint32_t lc = level < top ? level : top;; lc--) {
        size_t found = nn_search_layer(h, b, ctx, q, current, h->params.ef_construction, lc, limit);
        nn_scored_sort(ctx->results, found);
        // The node itself can be among the results only when re-inserted; never link to self.
        size_t n = 0;
        for (size_t i = 0; i < found; i++)
            if (ctx->results[i].id != node) ctx->results[n++] = ctx->results[i];
        if (n) current = ctx->results[0];
        nn_scored chosen[h->m];
        size_t m = select_heuristic(h, b, ctx, ctx->results, n, h->m, chosen);
        set_links(h, b, node, lc, chosen, m);
        for (size_t i = 0; i < m; i++) link_back(h, b, ctx, chosen[i].id, node, chosen[i].distance, lc);
        if (lc == 0) break;
    }

    if (level > top) {  // a new top layer: this node becomes the entry point
        pthread_mutex_lock(&h->entry_lock);
        uint64_t now = atomic_load_explicit(&h->entry, memory_order_acquire);
        if (now == NN_NO_ENTRY || (now >> 32) < level)
            atomic_store_explicit(&h->entry, ((uint64_t)level << 32) | node, memory_order_release);
        pthread_mutex_unlock(&h->entry_lock);
    }
}
