// Changes to nodes already in the graph: removal (a flag: the node still guides searches),
// replacement (a new vector and id in an existing slot, re-linked), and compaction (a fresh
// graph of the live nodes).
#include "hnsw_internal.h"

#include <stdlib.h>
#include <string.h>

nn_status nn_hnsw_remove(nn_hnsw *h, uint32_t node) {
    if (h->mapped) return NN_ERR_READ_ONLY;
    if (node >= nn_hnsw_count(h)) return NN_ERR_ARGUMENT;
    nn_node *header = nn_header(h, nn_blocks_now(h), node);
    uint16_t before = atomic_fetch_or_explicit(&header->flags, NN_NODE_REMOVED, memory_order_relaxed);
    if (!(before & NN_NODE_REMOVED)) atomic_fetch_add_explicit(&h->removed, 1, memory_order_relaxed);
    return NN_OK;
}

size_t nn_hnsw_removed_count(const nn_hnsw *h) {
    return atomic_load_explicit(&((nn_hnsw *)h)->removed, memory_order_relaxed);
}

// Takes `node` out of the lists of the nodes it links to on `level` (links are mostly mutual,
// so this removes most of the links into it), then clears its own list.
static void detach(nn_hnsw *h, const nn_blocks *b, uint32_t node, uint32_t level) {
    uint32_t neighbours[2 * 1024];
    size_t n = nn_hnsw_node_links(h, node, level, neighbours);
    for (size_t i = 0; i < n; i++) {
        nn_node *header = nn_header(h, b, neighbours[i]);
        _Atomic uint32_t *count;
        _Atomic uint32_t *links = nn_links(h, b, neighbours[i], level, &count);
        if (count == nn_no_links) continue;
        nn_node_lock(header);
        size_t have = atomic_load_explicit(count, memory_order_relaxed), kept = 0;
        for (size_t j = 0; j < have; j++) {
            uint32_t link = atomic_load_explicit(&links[j], memory_order_relaxed);
            if (link != node) atomic_store_explicit(&links[kept++], link, memory_order_release);
        }
        atomic_store_explicit(count, (uint32_t)kept, memory_order_release);
        if (level == 0 && kept < have)
            atomic_fetch_sub_explicit(&nn_header(h, b, node)->in0, 1, memory_order_relaxed);
        nn_node_unlock(header);
    }
    nn_set_links(h, b, node, level, NULL, 0);
}

// Re-inserting the entry point would start its search from itself, with its links just cleared,
// and find nothing. Hand the entry to its nearest neighbour on the highest layer where it has
// one; the re-insert makes the node the entry again, since its level is higher.
static void hand_over_entry(nn_hnsw *h, const nn_blocks *b, uint32_t node) {
    uint64_t entry = atomic_load_explicit(&h->entry, memory_order_acquire);
    if (entry == NN_NO_ENTRY || (uint32_t)entry != node) return;
    uint32_t links[2 * 1024];
    for (uint32_t level = (uint32_t)(entry >> 32) + 1; level-- > 0;) {
        if (nn_hnsw_node_links(h, node, level, links) == 0) continue;
        uint32_t heir = links[0];
        atomic_store_explicit(&h->entry, ((uint64_t)nn_header(h, b, heir)->level << 32) | heir, memory_order_release);
        return;
    }
}

nn_status nn_hnsw_replace(nn_hnsw *h, uint32_t node, const float *row, uint64_t id) {
    if (h->mapped) return NN_ERR_READ_ONLY;
    size_t count = nn_hnsw_count(h);
    if (node >= count) return NN_ERR_ARGUMENT;
    nn_context *ctx = nn_context_acquire(h, count);
    if (!ctx) return NN_ERR_NO_MEMORY;
    const nn_blocks *b = nn_blocks_now(h);
    nn_node *header = nn_header(h, b, node);
    hand_over_entry(h, b, node);
    for (uint32_t level = 0; level <= header->level; level++) detach(h, b, node, level);

    float *vector = (float *)nn_record(h, b, node);
    memcpy(vector, row, h->dim * sizeof(float));
    if (h->params.metric == NN_METRIC_COSINE) nn_normalize(vector, h->dim);
    header->id = id;
    uint16_t before = atomic_fetch_and_explicit(&header->flags, (uint16_t)~NN_NODE_REMOVED, memory_order_relaxed);
    if (before & NN_NODE_REMOVED) atomic_fetch_sub_explicit(&h->removed, 1, memory_order_relaxed);

    nn_insert_node(h, ctx, node, count);
    nn_status status = nn_reconnect_orphans(h, ctx, count);
    nn_context_release(h, ctx);
    return status;
}

nn_status nn_hnsw_compact(const nn_hnsw *h, nn_pool *pool, nn_hnsw **out) {
    size_t count = nn_hnsw_count(h);
    const nn_blocks *b = nn_blocks_now(h);
    nn_hnsw_params params = h->params;
    params.seed = h->rng;  // continue the level stream: compacting twice gives the same graph
    nn_hnsw *fresh;
    nn_status status = nn_hnsw_create(&params, &fresh);
    if (status != NN_OK) return status;
    size_t live = count - nn_hnsw_removed_count(h);
    float *rows = malloc((live ? live : 1) * h->dim * sizeof(float));
    uint64_t *ids = malloc((live ? live : 1) * sizeof(uint64_t));
    if (!rows || !ids) status = NN_ERR_NO_MEMORY;
    size_t n = 0;
    for (uint32_t node = 0; status == NN_OK && node < count && n < live; node++) {
        if (nn_is_removed(h, b, node)) continue;
        memcpy(rows + n * h->dim, nn_vector(h, b, node), h->dim * sizeof(float));
        ids[n++] = nn_header(h, b, node)->id;
    }
    if (status == NN_OK) status = nn_hnsw_add(fresh, pool, rows, n, h->dim, ids);
    fresh->params.seed = h->params.seed;  // the configuration as the user gave it
    free(rows);
    free(ids);
    if (status != NN_OK) {
        nn_hnsw_destroy(fresh);
        return status;
    }
    *out = fresh;
    return NN_OK;
}
