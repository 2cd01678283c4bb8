// HNSW storage and bulk insertion: node records in blocks that never move, the upper-layer
// link store, level draws, and the parallel INSERT of a batch.
#include "hnsw_internal.h"
#include "memory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void nn_hnsw_params_default(nn_hnsw_params *params, size_t dim, nn_metric metric) {
    *params = (nn_hnsw_params){
        .dim = dim, .metric = metric, .isa = NN_ISA_AUTO, .m = 16, .ef_construction = 200,
        .seed = 100, .keep_pruned = false,
    };
}

nn_status nn_hnsw_create(const nn_hnsw_params *params, nn_hnsw **out) {
    if (params->dim == 0 || (unsigned)params->metric >= NN_METRIC_COUNT || params->m < 2 ||
        params->m > 1024 || params->ef_construction < 1)
        return NN_ERR_ARGUMENT;
    nn_hnsw *h = calloc(1, sizeof *h);
    if (!h) return NN_ERR_NO_MEMORY;
    nn_status status = nn_kernels_init(&h->kernels, params->isa);
    if (status != NN_OK) {
        free(h);
        return status;
    }
    h->params = *params;
    h->params.isa = h->kernels.isa;
    h->distance = h->kernels.distance[params->metric];
    h->distance_many = h->kernels.distance_many[params->metric];
    h->dim = params->dim;
    h->m = params->m;
    h->m0 = 2 * params->m;
    h->ml = 1.0 / log((double)params->m);
    h->header_offset = (params->dim * sizeof(float) + 7) & ~(size_t)7;
    size_t bytes = h->header_offset + sizeof(nn_node) + h->m0 * sizeof(uint32_t);
    h->record_bytes = (bytes + 63) & ~(size_t)63;
    h->rng = params->seed;
    atomic_init(&h->count, 0);
    atomic_init(&h->entry, NN_NO_ENTRY);
    atomic_init(&h->blocks, NULL);
    h->upper_limit = UINT64_MAX;
    pthread_mutex_init(&h->entry_lock, NULL);
    pthread_mutex_init(&h->contexts_lock, NULL);
    pthread_mutex_init(&h->orphans_lock, NULL);
    *out = h;
    return NN_OK;
}

_Atomic uint32_t nn_no_links[1];

void nn_hnsw_destroy(nn_hnsw *h) {
    if (!h) return;
    nn_blocks *b = atomic_load(&h->blocks);
    if (!h->mapped) {  // a mapped view's records and links belong to the file's owner
        for (size_t i = h->borrowed_blocks; i < h->block_count; i++) free(b->block[i]);
        for (size_t k = h->borrowed_segments; k < NN_UPPER_SEGMENTS; k++) free(h->upper[k]);
    }
    free(b);
    for (size_t i = 0; i < h->retired_count; i++) free(h->retired[i]);
    free(h->retired);
    while (h->free_contexts) {
        nn_context *next = h->free_contexts->next;
        nn_context_free(h->free_contexts);
        h->free_contexts = next;
    }
    pthread_mutex_destroy(&h->entry_lock);
    pthread_mutex_destroy(&h->contexts_lock);
    pthread_mutex_destroy(&h->orphans_lock);
    free(h->orphans);
    free(h);
}

size_t nn_hnsw_count(const nn_hnsw *h) { return atomic_load_explicit(&((nn_hnsw *)h)->count, memory_order_acquire); }
nn_isa nn_hnsw_isa(const nn_hnsw *h) { return h->kernels.isa; }
size_t nn_hnsw_m(const nn_hnsw *h) { return h->m; }
size_t nn_hnsw_m0(const nn_hnsw *h) { return h->m0; }

size_t nn_hnsw_memory(const nn_hnsw *h) {
    if (h->mapped) return 0;
    size_t bytes = h->block_count * NN_BLOCK_NODES * h->record_bytes;
    for (size_t k = 0; k < NN_UPPER_SEGMENTS && h->upper[k]; k++) bytes += nn_upper_segment_words(k) * sizeof(uint32_t);
    return bytes;
}

// ---------------------------------------------------------------------------------------------
// Growth. Only the writer calls these, and only before it publishes the new count.

nn_status nn_ensure_blocks(nn_hnsw *h, size_t nodes) {
    size_t needed = (nodes + NN_BLOCK_NODES - 1) / NN_BLOCK_NODES;
    nn_blocks *b = atomic_load_explicit(&h->blocks, memory_order_relaxed);
    if (needed > (b ? b->capacity : 0)) {
        size_t capacity = b ? 2 * b->capacity : 8;
        while (capacity < needed) capacity *= 2;
        nn_blocks *grown = calloc(1, sizeof(nn_blocks) + capacity * sizeof(char *));
        nn_blocks **retired = realloc(h->retired, (h->retired_count + 1) * sizeof(nn_blocks *));
        if (!grown || !retired) {
            free(grown);
            if (retired) h->retired = retired;
            return NN_ERR_NO_MEMORY;
        }
        h->retired = retired;
        grown->capacity = capacity;
        if (b) {
            memcpy(grown->block, b->block, h->block_count * sizeof(char *));
            h->retired[h->retired_count++] = b;  // a search may still hold it
        }
        atomic_store_explicit(&h->blocks, grown, memory_order_release);
        b = grown;
    }
    while (h->block_count < needed) {
        char *block = nn_alloc_large(NN_BLOCK_NODES * h->record_bytes);
        if (!block) return NN_ERR_NO_MEMORY;
        b->block[h->block_count++] = block;
    }
    return NN_OK;
}

// Reserves `words` in the upper store, within one segment, and returns their offset.
static nn_status upper_alloc(nn_hnsw *h, size_t words, uint64_t *offset) {
    uint64_t at = h->upper_words;
    size_t k = nn_upper_segment(at);
    if (at + words > nn_upper_segment_start(k) + nn_upper_segment_words(k)) at = nn_upper_segment_start(++k);
    if (k >= NN_UPPER_SEGMENTS || words > nn_upper_segment_words(k)) return NN_ERR_FULL;
    if (!h->upper[k]) {
        h->upper[k] = calloc(nn_upper_segment_words(k), sizeof(uint32_t));
        if (!h->upper[k]) return NN_ERR_NO_MEMORY;
    }
    *offset = at;
    h->upper_words = at + words;
    return NN_OK;
}

// level = floor(-ln(U) * mL) with U uniform in (0, 1], from a SplitMix64 stream owned by the index.
static uint32_t draw_level(nn_hnsw *h) {
    uint64_t z = (h->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double u = ((double)(z >> 11) + 1.0) / 9007199254740992.0;  // (0, 1]
    double level = floor(-log(u) * h->ml);
    return level > NN_MAX_LEVEL ? NN_MAX_LEVEL : (uint32_t)level;
}

// Writes a node's record before anyone can see it.
static nn_status init_node(nn_hnsw *h, const nn_blocks *b, uint32_t node, const float *row,
                           uint64_t id, uint32_t level) {
    char *record = nn_record(h, b, node);
    memset(record, 0, h->record_bytes);  // padding too: a saved file is the same bytes every time
    memcpy(record, row, h->dim * sizeof(float));
    if (h->params.metric == NN_METRIC_COSINE) nn_normalize((float *)record, h->dim);
    nn_node *header = (nn_node *)(record + h->header_offset);
    atomic_init(&header->count0, 0);
    atomic_init(&header->lock, 0);
    atomic_init(&header->in0, 0);
    atomic_init(&header->flags, 0);
    header->level = (uint16_t)level;
    header->id = id;
    header->upper = NN_NO_UPPER;
    if (level > 0) return upper_alloc(h, (size_t)level * (1 + h->m), &header->upper);
    return NN_OK;
}

// ---------------------------------------------------------------------------------------------
// Bulk insertion: levels drawn up front in input order (so the graph depends on the seed, not on
// the threads), nodes published, then inserted highest level first, in parallel.

typedef struct add_job {
    nn_hnsw *h;
    const uint32_t *order;  // nodes, highest level first
    size_t limit;
    _Atomic int status;
} add_job;

static void add_task(void *raw, size_t task, size_t worker) {
    (void)worker;
    add_job *job = raw;
    nn_context *ctx = nn_context_acquire(job->h, job->limit);
    if (!ctx) {
        atomic_store(&job->status, NN_ERR_NO_MEMORY);
        return;
    }
    nn_insert_node(job->h, ctx, job->order[task], job->limit);
    nn_context_release(job->h, ctx);
}

typedef struct level_order {
    uint32_t level, node;
} level_order;

static int by_level_descending(const void *pa, const void *pb) {
    const level_order *a = pa, *b = pb;
    if (a->level != b->level) return a->level < b->level ? 1 : -1;
    return a->node < b->node ? -1 : a->node > b->node;
}

// Inserts run highest level first, but within a level in a seeded random order, not row order.
// Rows often come sorted (MiniLM's base is Debian packages by name: row i + 1 is among row i's
// 16 nearest for a third of the rows), and in row order neighbours are inserted side by side:
// on a pool two of them run at once and cannot see each other, and even on one thread the graph
// comes out worse (recall@10 at ef 64: 0.9894 in row order, 0.9922 shuffled, on 1 or 2 threads).
static void shuffle_levels(const nn_hnsw *h, level_order *order, size_t n, size_t start) {
    uint64_t x = h->params.seed ^ 0x9e3779b97f4a7c15ull ^ (uint64_t)start;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && order[j].level == order[i].level) j++;
        for (size_t k = j - 1; k > i; k--) {  // Fisher-Yates over [i, j), splitmix64 draws
            uint64_t z = (x += 0x9e3779b97f4a7c15ull);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            z ^= z >> 31;
            size_t r = i + (size_t)(z % (k - i + 1));
            level_order t = order[k];
            order[k] = order[r];
            order[r] = t;
        }
        i = j;
    }
}

nn_status nn_hnsw_add(nn_hnsw *h, nn_pool *pool, const float *rows, size_t n, size_t stride,
                      const uint64_t *ids) {
    if (h->mapped) return NN_ERR_READ_ONLY;
    if (stride < h->dim) return NN_ERR_ARGUMENT;
    if (n == 0) return NN_OK;
    size_t start = atomic_load_explicit(&h->count, memory_order_relaxed);
    if (n > (size_t)UINT32_MAX - 1 - start) return NN_ERR_FULL;
    level_order *order = malloc(n * sizeof *order);
    if (!order || nn_ensure_blocks(h, start + n) != NN_OK) {
        free(order);
        return NN_ERR_NO_MEMORY;  // blocks may have grown; the count has not
    }
    const nn_blocks *b = nn_blocks_now(h);
    uint64_t rng = h->rng, upper_words = h->upper_words;
    for (size_t i = 0; i < n; i++) {
        uint32_t node = (uint32_t)(start + i);
        order[i] = (level_order){draw_level(h), node};
        nn_status status = init_node(h, b, node, rows + i * stride, ids[i], order[i].level);
        if (status != NN_OK) {
            h->rng = rng;  // as if this call never happened
            h->upper_words = upper_words;
            free(order);
            return status;
        }
    }
    qsort(order, n, sizeof *order, by_level_descending);
    shuffle_levels(h, order, n, start);
    uint32_t *nodes = (uint32_t *)order;  // compact in place: node numbers only
    for (size_t i = 0; i < n; i++) nodes[i] = order[i].node;

    atomic_store_explicit(&h->count, start + n, memory_order_release);
    uint64_t old_entry = atomic_load_explicit(&h->entry, memory_order_acquire);
    add_job job = {h, nodes, start + n, NN_OK};
    nn_pool_run(pool, n, add_task, &job);
    free(order);

    // A former entry point was exempt while it was the entry; it must be reachable now too.
    uint64_t entry = atomic_load_explicit(&h->entry, memory_order_acquire);
    if (old_entry != NN_NO_ENTRY && old_entry != entry &&
        atomic_load(&nn_header(h, b, (uint32_t)old_entry)->in0) == 0)
        nn_note_orphan(h, (uint32_t)old_entry);
    nn_context *ctx = nn_context_acquire(h, start + n);
    if (!ctx) return NN_ERR_NO_MEMORY;
    nn_status repaired = nn_reconnect_orphans(h, ctx, start + n);
    // Groups that link only among themselves have in-degrees yet no path from the entry. Finding
    // them takes a walk of the whole layer, so it runs when the batch is at least 1/16 of the
    // graph: amortized, a constant number of link reads per added vector.
    if (repaired == NN_OK && 16 * n >= start + n) repaired = nn_reconnect_unreachable(h, ctx, start + n);
    nn_context_release(h, ctx);
    nn_status status = (nn_status)atomic_load(&job.status);
    return status != NN_OK ? status : repaired;
}

// ---------------------------------------------------------------------------------------------
// Inspection.

bool nn_hnsw_entry(const nn_hnsw *h, uint32_t *node, uint32_t *level) {
    uint64_t entry = atomic_load_explicit(&((nn_hnsw *)h)->entry, memory_order_acquire);
    if (entry == NN_NO_ENTRY) return false;
    *node = (uint32_t)entry;
    *level = (uint32_t)(entry >> 32);
    return true;
}

uint64_t nn_hnsw_node_id(const nn_hnsw *h, uint32_t node) { return nn_header(h, nn_blocks_now(h), node)->id; }
uint32_t nn_hnsw_node_level(const nn_hnsw *h, uint32_t node) { return nn_header(h, nn_blocks_now(h), node)->level; }
bool nn_hnsw_node_removed(const nn_hnsw *h, uint32_t node) { return nn_is_removed(h, nn_blocks_now(h), node); }
const float *nn_hnsw_node_vector(const nn_hnsw *h, uint32_t node) { return nn_vector(h, nn_blocks_now(h), node); }

size_t nn_hnsw_node_links(const nn_hnsw *h, uint32_t node, uint32_t level, uint32_t *out) {
    const nn_blocks *b = nn_blocks_now(h);
    if (level > nn_header(h, b, node)->level) return 0;
    _Atomic uint32_t *count;
    _Atomic uint32_t *links = nn_links(h, b, node, level, &count);
    size_t n = atomic_load_explicit(count, memory_order_acquire), cap = level == 0 ? h->m0 : h->m;
    if (n > cap) n = cap;  // a damaged mapped file can claim more
    for (size_t i = 0; i < n; i++) out[i] = atomic_load_explicit(&links[i], memory_order_acquire);
    return n;
}
