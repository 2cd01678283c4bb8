// The HNSW graph of Malkov & Yashunin (2018): a hierarchy of proximity graphs, searched from
// the top layer down (Algorithms 2 and 5), built by inserting nodes (Algorithm 1) with the
// neighbour-selection heuristic (Algorithm 4).
//
// Thread safety: any number of searches may run while one `nn_hnsw_add` runs (which itself
// inserts in parallel on a pool). Two `nn_hnsw_add` calls must not overlap: the Swift façade
// serializes writers. Node storage grows in blocks that never move, so a search never sees
// memory freed under it.
#ifndef NN_HNSW_H
#define NN_HNSW_H

#include "nn_base.h"
#include "nn_pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nn_hnsw nn_hnsw;

typedef struct nn_hnsw_params {
    size_t dim;
    nn_metric metric;
    nn_isa isa;               ///< kernels; NN_ISA_AUTO for the best
    size_t m;                 ///< M: links per node on layers >= 1; layer 0 keeps Mmax0 = 2M
    size_t ef_construction;   ///< efConstruction: beam width while inserting
    uint64_t seed;            ///< seeds the level draws: same seed, same graph (1 thread)
    bool keep_pruned;         ///< keepPrunedConnections of Algorithm 4
} nn_hnsw_params;

/// Work done by one search, for benchmarks.
typedef struct nn_hnsw_stats {
    uint64_t distances;  ///< distance computations
    uint64_t hops;       ///< nodes expanded (candidates popped), all layers
} nn_hnsw_stats;

/// Fills `params` with the defaults: M = 16, efConstruction = 200, seed 100, no keep_pruned.
void nn_hnsw_params_default(nn_hnsw_params *_Nonnull params, size_t dim, nn_metric metric);

nn_status nn_hnsw_create(const nn_hnsw_params *_Nonnull params, nn_hnsw *_Nullable *_Nonnull out);
void nn_hnsw_destroy(nn_hnsw *_Nullable index);

size_t nn_hnsw_count(const nn_hnsw *_Nonnull index);
nn_isa nn_hnsw_isa(const nn_hnsw *_Nonnull index);
/// Bytes held by the graph: node records, upper-layer links, scratch.
size_t nn_hnsw_memory(const nn_hnsw *_Nonnull index);

/// Inserts `n` rows (`stride` floats apart) with external ids `ids` in parallel on `pool`.
/// Nodes get the next internal numbers in order. The caller validates rows and ids.
nn_status nn_hnsw_add(nn_hnsw *_Nonnull index, nn_pool *_Nonnull pool, const float *_Nonnull rows,
                      size_t n, size_t stride, const uint64_t *_Nonnull ids);

/// The `k` nearest to `query` with a layer-0 beam of width `ef` (raised to k if smaller).
/// Writes k ids and distances, nearest first; empty slots get NN_NO_ID and +Inf.
/// `stats` may be NULL.
nn_status nn_hnsw_search(const nn_hnsw *_Nonnull index, const float *_Nonnull query, size_t k,
                         size_t ef, uint64_t *_Nonnull ids, float *_Nonnull distances,
                         nn_hnsw_stats *_Nullable stats);

/// `nq` searches in parallel on `pool`; `stats` (may be NULL) receives the totals.
nn_status nn_hnsw_search_batch(const nn_hnsw *_Nonnull index, nn_pool *_Nonnull pool,
                               const float *_Nonnull queries, size_t nq, size_t stride, size_t k,
                               size_t ef, uint64_t *_Nonnull ids, float *_Nonnull distances,
                               nn_hnsw_stats *_Nullable stats);

// Inspection, for tests and tools.

/// The entry point's node and the top layer; false while the graph is empty.
bool nn_hnsw_entry(const nn_hnsw *_Nonnull index, uint32_t *_Nonnull node, uint32_t *_Nonnull level);
/// The external id and top layer of node `node` (< count).
uint64_t nn_hnsw_node_id(const nn_hnsw *_Nonnull index, uint32_t node);
uint32_t nn_hnsw_node_level(const nn_hnsw *_Nonnull index, uint32_t node);
/// Copies the links of `node` on `level` (<= its level) into `out` (room for 2M) and returns
/// how many there are.
size_t nn_hnsw_node_links(const nn_hnsw *_Nonnull index, uint32_t node, uint32_t level,
                          uint32_t *_Nonnull out);
/// The vector stored for `node` (normalized under cosine).
const float *_Nonnull nn_hnsw_node_vector(const nn_hnsw *_Nonnull index, uint32_t node);
/// M and Mmax0 as built.
size_t nn_hnsw_m(const nn_hnsw *_Nonnull index);
size_t nn_hnsw_m0(const nn_hnsw *_Nonnull index);

#ifdef __cplusplus
}
#endif
#endif
