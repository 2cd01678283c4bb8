// HNSW insertion: INSERT (Algorithm 1) with SELECT-NEIGHBORS-HEURISTIC (Algorithm 4), reverse
// links pruned back to Mmax / Mmax0 with the same heuristic.
#include "hnsw_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Algorithm 4: walk the candidates nearest first and keep one only if it is closer to the base
// than to every neighbour kept so far, which spreads links over directions instead of
// spending them all on one dense cluster. `candidates` must be sorted nearest first.
// A candidate meets the kept neighbours four at a time (one batched kernel call, stopping at the
// first group with a closer one). Uses ctx->batch_rows and batch_distances as scratch.
static size_t select_heuristic(const nn_hnsw *h, const nn_blocks *b, nn_context *ctx,
                               const nn_scored *candidates, size_t n, size_t m, nn_scored *out) {
    const float **kept_rows = ctx->batch_rows;
    float *distances = ctx->batch_distances;
    size_t kept = 0, pruned = 0;
    for (size_t i = 0; i < n && kept < m; i++) {
        nn_scored e = candidates[i];
        const float *v = nn_vector(h, b, e.id);
        bool good = true;
        for (size_t j = 0; j < kept && good; j += 4) {
            size_t group = kept - j < 4 ? kept - j : 4;
            h->distance_many(v, kept_rows + j, group, h->dim, distances);
            for (size_t g = 0; g < group; g++) good &= !(distances[g] < e.distance);
        }
        if (good) {
            kept_rows[kept] = v;
            out[kept++] = e;
        } else if (pruned < m) ctx->pruned[pruned++] = e;  // at most m are ever used
    }
    if (h->params.keep_pruned)
        for (size_t i = 0; i < pruned && kept < m; i++) out[kept++] = ctx->pruned[i];
    return kept;
}

// Layer-0 in-degree bookkeeping. A node nobody links to on layer 0 cannot be found; the
// heuristic's pruning can leave a node so (hnswlib and FAISS leave it there), and the add that
// did it reconnects it before returning (nn_reconnect_orphans).
void nn_note_orphan(nn_hnsw *h, uint32_t node) {
    pthread_mutex_lock(&h->orphans_lock);
    if (h->orphan_count == h->orphan_capacity) {
        size_t capacity = h->orphan_capacity ? 2 * h->orphan_capacity : 64;
        uint32_t *grown = realloc(h->orphans, capacity * sizeof(uint32_t));
        if (!grown) {  // left unreconnected: findable again after the next add's repair
            pthread_mutex_unlock(&h->orphans_lock);
            return;
        }
        h->orphans = grown;
        h->orphan_capacity = capacity;
    }
    h->orphans[h->orphan_count++] = node;
    pthread_mutex_unlock(&h->orphans_lock);
}

static void gain_link(const nn_hnsw *h, const nn_blocks *b, uint32_t node) {
    atomic_fetch_add_explicit(&nn_header(h, b, node)->in0, 1, memory_order_relaxed);
}

static void lose_link(nn_hnsw *h, const nn_blocks *b, uint32_t node) {
    if (atomic_fetch_sub_explicit(&nn_header(h, b, node)->in0, 1, memory_order_relaxed) == 1)
        nn_note_orphan(h, node);
}

static bool contains(const nn_scored *items, size_t n, uint32_t id) {
    for (size_t i = 0; i < n; i++)
        if (items[i].id == id) return true;
    return false;
}

// Adds the link `neighbour` -> `node` on `level`; when the list is full, prunes the list plus the
// newcomer back to its cap with the heuristic (the paper's "shrink connections").
static void link_back(nn_hnsw *h, const nn_blocks *b, nn_context *ctx, uint32_t neighbour,
                      uint32_t node, float distance, uint32_t level) {
    size_t cap = level == 0 ? h->m0 : h->m;
    nn_node *header = nn_header(h, b, neighbour);
    _Atomic uint32_t *count;
    _Atomic uint32_t *links = nn_links(h, b, neighbour, level, &count);
    if (count == nn_no_links) return;  // the neighbour is not on this layer: never write the shared empty list
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
        if (level == 0) gain_link(h, b, node);
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
    nn_scored_sort_small(candidates, n + 1);
    nn_scored kept[n + 1];
    size_t m = select_heuristic(h, b, ctx, candidates, n + 1, cap, kept);
    for (size_t i = 0; i < m; i++) atomic_store_explicit(&links[i], kept[i].id, memory_order_release);
    atomic_store_explicit(count, (uint32_t)m, memory_order_release);
    if (level == 0) {
        if (contains(kept, m, node)) gain_link(h, b, node);
        for (size_t i = 0; i < n; i++)
            if (!contains(kept, m, ctx->batch_ids[i])) lose_link(h, b, ctx->batch_ids[i]);
    }
    nn_node_unlock(header);
}

// Sets `node`'s own links on `level`, replacing any it had.
void nn_set_links(nn_hnsw *h, const nn_blocks *b, uint32_t node, uint32_t level,
                      const nn_scored *neighbours, size_t n) {
    nn_node *header = nn_header(h, b, node);
    _Atomic uint32_t *count;
    _Atomic uint32_t *links = nn_links(h, b, node, level, &count);
    if (count == nn_no_links) return;
    nn_node_lock(header);
    if (level == 0) {
        size_t old = atomic_load_explicit(count, memory_order_relaxed);
        for (size_t i = 0; i < n; i++) gain_link(h, b, neighbours[i].id);
        for (size_t i = 0; i < old; i++) lose_link(h, b, atomic_load_explicit(&links[i], memory_order_relaxed));
    }
    for (size_t i = 0; i < n; i++) atomic_store_explicit(&links[i], neighbours[i].id, memory_order_release);
    atomic_store_explicit(count, (uint32_t)n, memory_order_release);
    nn_node_unlock(header);
}

// Links `node` to its chosen neighbours on `level`, and each of them back to it.
static void link_layer(nn_hnsw *h, const nn_blocks *b, nn_context *ctx, uint32_t node, uint32_t level,
                       const nn_scored *chosen, size_t m) {
    nn_set_links(h, b, node, level, chosen, m);
    for (size_t i = 0; i < m; i++) link_back(h, b, ctx, chosen[i].id, node, chosen[i].distance, level);
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

    // Links are published bottom-up, after every layer's neighbours are chosen: a search that
    // reaches the node on a layer then finds it linked on every layer below. Linked top-down, a
    // concurrent search could descend onto it before its layer-0 links exist and return it alone.
    uint32_t highest = level < top ? level : top;
    size_t levels = (size_t)highest + 1, counts[levels];
    nn_scored one_layer[h->m];
    nn_scored *chosen = levels == 1 ? one_layer : malloc(levels * h->m * sizeof *chosen);
    bool deferred = chosen != NULL;
    if (!deferred) chosen = one_layer;  // out of memory: link each layer as it is chosen
    for (uint32_t lc = highest;; lc--) {
        size_t found = nn_search_layer(h, b, ctx, q, current, h->params.ef_construction, lc, limit, NULL);
        if (found == NN_SEARCH_FAILED) found = 0;  // out of memory: the node stays unlinked here
        nn_sort_results(ctx, found);
        // The node itself can be among the results only when re-inserted; never link to self.
        size_t n = 0;
        for (size_t i = 0; i < found; i++)
            if (ctx->results[i].id != node) ctx->results[n++] = ctx->results[i];
        if (n) current = ctx->results[0];
        nn_scored *layer = deferred ? chosen + (size_t)lc * h->m : chosen;
        counts[lc] = select_heuristic(h, b, ctx, ctx->results, n, h->m, layer);
        if (!deferred) link_layer(h, b, ctx, node, lc, layer, counts[lc]);
        if (lc == 0) break;
    }
    if (deferred)
        for (uint32_t lc = 0; lc <= highest; lc++) link_layer(h, b, ctx, node, lc, chosen + (size_t)lc * h->m, counts[lc]);
    if (chosen != one_layer) free(chosen);

    if (level > top) {  // a new top layer: this node becomes the entry point
        pthread_mutex_lock(&h->entry_lock);
        uint64_t now = atomic_load_explicit(&h->entry, memory_order_acquire);
        if (now == NN_NO_ENTRY || (now >> 32) < level) {
            atomic_store_explicit(&h->entry, ((uint64_t)level << 32) | node, memory_order_release);
            if (now != NN_NO_ENTRY && atomic_load(&nn_header(h, b, (uint32_t)now)->in0) == 0)
                nn_note_orphan(h, (uint32_t)now);
        }
        pthread_mutex_unlock(&h->entry_lock);
    } else if (atomic_load(&nn_header(h, b, node)->in0) == 0) {
        nn_note_orphan(h, node);  // every neighbour pruned it away again
    }
}

// Links `node` from the nearest node found (from the entry) that has room on layer 0, or, if
// all are full, in place of that node's farthest link, which may orphan another (noted).
static nn_status link_from_nearest(nn_hnsw *h, const nn_blocks *b, nn_context *ctx, uint32_t node,
                                   size_t limit) {
    uint64_t entry = atomic_load_explicit(&h->entry, memory_order_acquire);
    const float *q = nn_vector(h, b, node);
    uint32_t top = (uint32_t)(entry >> 32), start = (uint32_t)entry;
    nn_scored current = {h->distance(q, nn_vector(h, b, start), h->dim), start};
    current = nn_greedy_descent(h, b, ctx, q, current, top, 0, limit);
    size_t found = nn_search_layer(h, b, ctx, q, current, h->params.ef_construction, 0, limit, NULL);
    if (found == NN_SEARCH_FAILED) return NN_ERR_NO_MEMORY;
    nn_sort_results(ctx, found);
    size_t nearest = found;
    for (size_t i = 0; i < found; i++) {
        uint32_t r = ctx->results[i].id;
        if (r == node) continue;
        if (nearest == found) nearest = i;
        nn_node *header = nn_header(h, b, r);
        _Atomic uint32_t *count;
        _Atomic uint32_t *links = nn_links(h, b, r, 0, &count);
        nn_node_lock(header);
        size_t n = atomic_load_explicit(count, memory_order_relaxed);
        bool room = n < h->m0;
        if (room) {
            atomic_store_explicit(&links[n], node, memory_order_release);
            atomic_store_explicit(count, (uint32_t)(n + 1), memory_order_release);
            gain_link(h, b, node);
        }
        nn_node_unlock(header);
        if (room) return NN_OK;
    }
    if (nearest == found) return NN_OK;  // nothing else is reachable: nothing to link from

    uint32_t r = ctx->results[nearest].id;
    nn_node *header = nn_header(h, b, r);
    _Atomic uint32_t *count;
    _Atomic uint32_t *links = nn_links(h, b, r, 0, &count);
    nn_node_lock(header);
    size_t n = atomic_load_explicit(count, memory_order_relaxed), farthest = 0;
    float worst = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        uint32_t l = atomic_load_explicit(&links[i], memory_order_relaxed);
        float d = h->distance(nn_vector(h, b, r), nn_vector(h, b, l), h->dim);
        if (d > worst) worst = d, farthest = i;
    }
    uint32_t dropped = atomic_load_explicit(&links[farthest], memory_order_relaxed);
    atomic_store_explicit(&links[farthest], node, memory_order_release);
    gain_link(h, b, node);
    lose_link(h, b, dropped);
    nn_node_unlock(header);
    return NN_OK;
}

// Links each node left with no incoming layer-0 link. Called by the single writer after an add;
// the list is worked until empty, within a bound, since a repair can orphan another node.
nn_status nn_reconnect_orphans(nn_hnsw *h, nn_context *ctx, size_t limit) {
    const nn_blocks *b = nn_blocks_now(h);
    size_t budget = 4 * h->orphan_count + 64;
    while (budget-- > 0) {
        pthread_mutex_lock(&h->orphans_lock);
        bool empty = h->orphan_count == 0;
        uint32_t node = empty ? 0 : h->orphans[--h->orphan_count];
        pthread_mutex_unlock(&h->orphans_lock);
        if (empty) return NN_OK;
        uint64_t entry = atomic_load_explicit(&h->entry, memory_order_acquire);
        if ((uint32_t)entry == node || atomic_load(&nn_header(h, b, node)->in0) > 0 ||
            nn_is_removed(h, b, node))
            continue;
        nn_status status = link_from_nearest(h, b, ctx, node, limit);
        if (status != NN_OK) return status;
    }
    return NN_OK;
}

// Marks everything reachable on layer 0 from `from` (breadth first).
static void mark_reachable(const nn_hnsw *h, const nn_blocks *b, uint32_t from, size_t limit,
                           uint8_t *reached, uint32_t *queue) {
    if (reached[from]) return;
    size_t head = 0, tail = 0;
    reached[from] = 1;
    queue[tail++] = from;
    while (head < tail) {
        uint32_t node = queue[head++];
        _Atomic uint32_t *count;
        _Atomic uint32_t *links = nn_links(h, b, node, 0, &count);
        size_t n = atomic_load_explicit(count, memory_order_acquire);
        if (n > h->m0) n = h->m0;
        for (size_t i = 0; i < n; i++) {
            uint32_t next = atomic_load_explicit(&links[i], memory_order_acquire);
            if (next < limit && !reached[next]) {
                reached[next] = 1;
                queue[tail++] = next;
            }
        }
    }
}

// Makes every live node reachable from the entry point on layer 0: walks the layer, and links
// each node the walk missed from its nearest reachable neighbour, then walks on from it.
nn_status nn_reconnect_unreachable(nn_hnsw *h, nn_context *ctx, size_t limit) {
    uint64_t entry = atomic_load_explicit(&h->entry, memory_order_acquire);
    if (entry == NN_NO_ENTRY) return NN_OK;
    const nn_blocks *b = nn_blocks_now(h);
    uint8_t *reached = calloc(limit, 1);
    uint32_t *queue = malloc(limit * sizeof(uint32_t));
    nn_status status = reached && queue ? NN_OK : NN_ERR_NO_MEMORY;
    if (status == NN_OK) mark_reachable(h, b, (uint32_t)entry, limit, reached, queue);
    for (uint32_t node = 0; status == NN_OK && node < limit; node++) {
        if (reached[node] || nn_is_removed(h, b, node)) continue;
        status = link_from_nearest(h, b, ctx, node, limit);
        mark_reachable(h, b, node, limit, reached, queue);
    }
    free(reached);
    free(queue);
    return status == NN_OK ? nn_reconnect_orphans(h, ctx, limit) : status;
}
