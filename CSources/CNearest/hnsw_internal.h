// The HNSW graph's layout, shared by its storage, search and insertion files.
#ifndef NN_HNSW_INTERNAL_H
#define NN_HNSW_INTERNAL_H

#include "heap.h"
#include "nn_hnsw.h"
#include "nn_kernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

// Node records live in blocks of 2^12 that never move once allocated; the block directory is
// replaced (never resized in place) when it fills, and old directories are kept until destroy,
// so a search that loaded one keeps valid pointers.
enum { NN_BLOCK_BITS = 12, NN_BLOCK_NODES = 1 << NN_BLOCK_BITS, NN_MAX_LEVEL = 31 };

#define NN_NO_ENTRY UINT64_MAX

typedef struct nn_blocks {
    size_t capacity;  // block slots
    char *block[];    // NN_BLOCK_NODES records each
} nn_blocks;

// One record per node, `record_bytes` apart (a multiple of 64), layer 0 and the vector together
// so a hop reads a node's links and its neighbours' vectors without another indirection:
//   float vector[dim]              at 0, 64-byte aligned
//   nn_node header                 at header_offset
//   _Atomic uint32_t links0[Mmax0] right after the header
// Records hold no pointers, so a saved file's node section is these records byte for byte and a
// memory-mapped view searches them in place.
typedef struct nn_node {
    _Atomic uint32_t count0;   // links on layer 0
    _Atomic uint32_t in0;      // links pointing at this node on layer 0; 0 means unreachable
    _Atomic uint32_t lock;     // spinlock held while this node's link lists change
    uint16_t level;            // the node's top layer (l in Algorithm 1); set before publication
    _Atomic uint16_t flags;    // NN_NODE_REMOVED
    uint64_t id;               // external id
    uint64_t upper;            // word offset of layers 1...level in the upper store, each (1 + M)
                               // words: count, then M links; NN_NO_UPPER on layer 0 only
} nn_node;
_Static_assert(sizeof(nn_node) == 32, "node header is half a cache line");

enum { NN_NODE_REMOVED = 1 };
#define NN_NO_UPPER UINT64_MAX

// The upper store: few nodes have upper layers (a share of about 1/M), so their lists live in a
// store of their own, segments of B << k words (k = 0, 1, ...) that never move, addressed by a
// linear word offset. A node's lists never straddle two segments, so saving writes the segments
// back to back and a mapped view addresses the same offsets in one contiguous section.
enum { NN_UPPER_BASE_BITS = 12, NN_UPPER_SEGMENTS = 40 };

static inline size_t nn_upper_segment(uint64_t offset) {
    uint64_t units = (offset >> NN_UPPER_BASE_BITS) + 1;
    return (size_t)(63 - __builtin_clzll(units));
}

static inline uint64_t nn_upper_segment_start(size_t k) {
    return (((uint64_t)1 << k) - 1) << NN_UPPER_BASE_BITS;
}

static inline uint64_t nn_upper_segment_words(size_t k) { return (uint64_t)1 << (k + NN_UPPER_BASE_BITS); }

// Per-search scratch: visited tags, the heaps, the batch buffers of the layer-0 scan.
typedef struct nn_context {
    struct nn_context *next;      // free-list link
    uint16_t *visited;            // visited[node] == epoch: seen in this search
    size_t visited_capacity;
    uint16_t epoch;
    nn_scored *candidates;        // C in Algorithm 2: a min-heap that may outgrow ef
    size_t candidates_capacity;
    nn_scored *results;           // W in Algorithm 2: a max-heap of at most ef
    size_t results_capacity;
    nn_scored *selected;          // neighbour selection output / reverse-link candidates
    nn_scored *pruned;            // discarded by the heuristic (keepPrunedConnections)
    uint32_t *batch_ids;          // unvisited neighbours of one node
    const float **batch_rows;
    float *batch_distances;
    float *query;                 // the normalized query under cosine
    nn_hnsw_stats stats;
} nn_context;

struct nn_hnsw {
    nn_hnsw_params params;
    nn_kernels kernels;
    nn_distance_fn distance;            // for params.metric
    nn_distance_many_fn distance_many;
    size_t dim;
    size_t m;                           // M
    size_t m0;                          // Mmax0 = 2M
    double ml;                          // mL = 1 / ln M
    size_t record_bytes;
    size_t header_offset;

    _Atomic(nn_blocks *) blocks;
    nn_blocks **retired;                // replaced directories, freed at destroy
    size_t retired_count;
    size_t block_count;                 // blocks allocated (writer only)
    _Atomic size_t count;               // published nodes: records below it are initialized
    _Atomic size_t removed;             // nodes flagged NN_NODE_REMOVED
    _Atomic uint64_t entry;             // (top level << 32) | node, or NN_NO_ENTRY
    pthread_mutex_t entry_lock;

    _Atomic uint32_t *upper[NN_UPPER_SEGMENTS];  // segments; written before the nodes using them are published
    uint64_t upper_words;               // next free offset (writer only)
    uint64_t upper_limit;               // offsets below it are backed: a mapped file's size, else UINT64_MAX
    bool mapped;                        // records and upper store belong to a mapped file: read-only
    size_t borrowed_blocks;             // the first blocks and upper segments are the opener's
    size_t borrowed_segments;           // memory (NN_OPEN_IN_PLACE): never freed here
    uint64_t rng;                       // level draws (writer only)

    pthread_mutex_t orphans_lock;       // nodes whose layer-0 in-degree fell to 0 during an add
    uint32_t *orphans;
    size_t orphan_count, orphan_capacity;

    pthread_mutex_t contexts_lock;
    nn_context *free_contexts;
    size_t context_bytes;               // approximate, for nn_hnsw_memory
};

static inline char *nn_record(const nn_hnsw *h, const nn_blocks *b, uint32_t node) {
    return b->block[node >> NN_BLOCK_BITS] + (size_t)(node & (NN_BLOCK_NODES - 1)) * h->record_bytes;
}

static inline const float *nn_vector(const nn_hnsw *h, const nn_blocks *b, uint32_t node) {
    return (const float *)nn_record(h, b, node);
}

static inline nn_node *nn_header(const nn_hnsw *h, const nn_blocks *b, uint32_t node) {
    return (nn_node *)(nn_record(h, b, node) + h->header_offset);
}

extern _Atomic uint32_t nn_no_links[1];  // an empty list: count 0 (never written)

/// The count word and link array of `node` on `level`. A level above the node's own, or an
/// offset outside a mapped file's store (a corrupt file), gives an empty list.
static inline _Atomic uint32_t *nn_links(const nn_hnsw *h, const nn_blocks *b, uint32_t node,
                                         uint32_t level, _Atomic uint32_t **count) {
    nn_node *n = nn_header(h, b, node);
    if (level == 0) {
        *count = &n->count0;
        return (_Atomic uint32_t *)(n + 1);
    }
    uint64_t offset = n->upper + (uint64_t)(level - 1) * (1 + h->m);
    if (level > n->level || n->upper == NN_NO_UPPER || offset >= h->upper_limit ||
        h->upper_limit - offset < 1 + h->m) {
        *count = nn_no_links;
        return nn_no_links;
    }
    size_t k = nn_upper_segment(offset);
    _Atomic uint32_t *list = h->upper[k] + (offset - nn_upper_segment_start(k));
    *count = list;
    return list + 1;
}

static inline bool nn_is_removed(const nn_hnsw *h, const nn_blocks *b, uint32_t node) {
    return atomic_load_explicit(&nn_header(h, b, node)->flags, memory_order_relaxed) & NN_NODE_REMOVED;
}

static inline void nn_node_lock(nn_node *n) {
    for (;;) {
        if (!atomic_exchange_explicit(&n->lock, 1, memory_order_acquire)) return;
        while (atomic_load_explicit(&n->lock, memory_order_relaxed)) sched_yield();
    }
}

static inline void nn_node_unlock(nn_node *n) { atomic_store_explicit(&n->lock, 0, memory_order_release); }

static inline const nn_blocks *nn_blocks_now(const nn_hnsw *h) {
    return atomic_load_explicit(&((nn_hnsw *)h)->blocks, memory_order_acquire);
}

// Storage (hnsw_graph.c).
nn_status nn_ensure_blocks(nn_hnsw *h, size_t nodes);

// Search (hnsw_search.c).
nn_context *nn_context_acquire(const nn_hnsw *h, size_t nodes);
void nn_context_release(const nn_hnsw *h, nn_context *ctx);
void nn_context_free(nn_context *ctx);
nn_scored nn_greedy_descent(const nn_hnsw *h, const nn_blocks *b, nn_context *ctx, const float *q,
                            nn_scored entry, uint32_t from_level, uint32_t to_level, size_t limit);
#define NN_SEARCH_FAILED SIZE_MAX

/// Sorts W, left as a max-heap by nn_search_layer, nearest first.
static inline void nn_sort_results(nn_context *ctx, size_t found) {
    nn_heap w = {ctx->results, found, found};
    nn_heap_sort(&w);
}

// Which nodes a filtered search may return: a bitset over the first `size` node numbers (nodes
// added since it was made are outside it, and not allowed) or, with `by_id`, over the first
// `size` external ids (for callers whose ids are dense, such as a store's row numbers, so the
// set needs no translation to nodes). NULL where one is taken means all.
typedef struct nn_allow {
    const uint64_t *bits;
    size_t size;
    bool by_id;
} nn_allow;

size_t nn_search_layer(const nn_hnsw *h, const nn_blocks *b, nn_context *ctx, const float *q,
                       nn_scored entry, size_t ef, uint32_t level, size_t limit,
                       const nn_allow *allow);

// Insertion (hnsw_insert.c).
void nn_insert_node(nn_hnsw *h, nn_context *ctx, uint32_t node, size_t limit);
nn_status nn_reconnect_orphans(nn_hnsw *h, nn_context *ctx, size_t limit);
nn_status nn_reconnect_unreachable(nn_hnsw *h, nn_context *ctx, size_t limit);
void nn_note_orphan(nn_hnsw *h, uint32_t node);
void nn_set_links(nn_hnsw *h, const nn_blocks *b, uint32_t node, uint32_t level,
                  const nn_scored *neighbours, size_t n);

#endif
