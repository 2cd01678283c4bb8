// The HNSW graph of Malkov & Yashunin (2018): a hierarchy of proximity graphs, searched from
// the top layer down (Algorithms 2 and 5), built by inserting nodes (Algorithm 1) with the
// neighbour-selection heuristic (Algorithm 4).
//
// Thread safety: any number of searches may run while one `nn_hnsw_add` or `nn_hnsw_remove`
// runs (an add inserts in parallel on a pool). Two writers must not overlap, and replace and
// compact need the index to themselves: the Swift façade enforces both. Node storage grows in blocks that never move, so a search never sees
// memory freed under it.
#ifndef NN_HNSW_H
#define NN_HNSW_H

/// The widest beam (`ef`) and the most results (`k`) a search takes; more is NN_ERR_ARGUMENT
/// (its buffers are sized by them).
#define NN_HNSW_MAX_EF ((size_t)1 << 24)

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
/// Bytes held by the graph: node records and upper-layer links (not the search scratch); 0 when mapped.
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

/// As nn_hnsw_search, but only nodes whose bit is set in `allow` (bit `node % 64` of word
/// `node / 64`, for nodes below `allow_nodes`; later nodes are not allowed) are returned; the
/// others still guide the search. With few allowed nodes the search explores much of the
/// graph: score them with nn_hnsw_search_nodes instead.
nn_status nn_hnsw_search_filtered(const nn_hnsw *_Nonnull index, const float *_Nonnull query,
                                  size_t k, size_t ef, const uint64_t *_Nonnull allow,
                                  size_t allow_nodes, uint64_t *_Nonnull ids,
                                  float *_Nonnull distances, nn_hnsw_stats *_Nullable stats);

/// As nn_hnsw_search_filtered, but the bitset is indexed by external id: a node is returned
/// only if its id is below `allow_ids` and bit `id % 64` of word `id / 64` is set. For callers
/// whose ids are dense (a store's row numbers): their sets need no translation to nodes, and
/// stay right while nodes are added or moved.
nn_status nn_hnsw_search_filtered_ids(const nn_hnsw *_Nonnull index, const float *_Nonnull query,
                                      size_t k, size_t ef, const uint64_t *_Nonnull allow,
                                      size_t allow_ids, uint64_t *_Nonnull ids,
                                      float *_Nonnull distances, nn_hnsw_stats *_Nullable stats);

/// Exact: the `k` nearest to `query` among the `n` listed nodes (removed ones and numbers past
/// the count skipped). Writes k ids and distances as nn_hnsw_search does.
nn_status nn_hnsw_search_nodes(const nn_hnsw *_Nonnull index, const float *_Nonnull query, size_t k,
                               const uint32_t *_Nonnull nodes, size_t n, uint64_t *_Nonnull ids,
                               float *_Nonnull distances);

/// `nq` searches in parallel on `pool`; `stats` (may be NULL) receives the totals.
nn_status nn_hnsw_search_batch(const nn_hnsw *_Nonnull index, nn_pool *_Nonnull pool,
                               const float *_Nonnull queries, size_t nq, size_t stride, size_t k,
                               size_t ef, uint64_t *_Nonnull ids, float *_Nonnull distances,
                               nn_hnsw_stats *_Nullable stats);

// Changes to existing nodes. Each needs the single-writer rule of nn_hnsw_add; replace and
// compact also rewrite memory that searches read, so no search may run during them.

/// Flags `node` removed: never returned again, still traversed, until replaced or compacted.
nn_status nn_hnsw_remove(nn_hnsw *_Nonnull index, uint32_t node);
/// Nodes flagged removed.
size_t nn_hnsw_removed_count(const nn_hnsw *_Nonnull index);
/// Puts a new vector and id into `node` (live or removed) and re-links it. The caller validates.
nn_status nn_hnsw_replace(nn_hnsw *_Nonnull index, uint32_t node, const float *_Nonnull row, uint64_t id);
/// A fresh graph of the live nodes (in node order, so their numbers change), built on `pool`.
nn_status nn_hnsw_compact(const nn_hnsw *_Nonnull index, nn_pool *_Nonnull pool,
                          nn_hnsw *_Nullable *_Nonnull out);

// Persistence. The C core lays the graph out so that a file can hold it byte for byte; the
// Swift façade writes, checksums and reads the files (docs/FORMAT.md).

/// The fixed-size facts of a graph, as a file header stores them.
typedef struct nn_hnsw_layout {
    uint32_t dim;
    uint32_t metric;
    uint32_t m;
    uint32_t m0;
    uint32_t ef_construction;
    uint32_t keep_pruned;
    uint64_t seed;
    uint64_t rng;            ///< the level stream's state, so later adds continue it
    uint64_t count;          ///< node records
    uint64_t removed;        ///< of which flagged removed
    uint64_t entry;          ///< (top level << 32) | node, or UINT64_MAX when empty
    uint64_t record_bytes;
    uint64_t header_offset;  ///< where a record's node header starts
    uint64_t upper_words;    ///< 32-bit words in the upper-layer link store
} nn_hnsw_layout;

void nn_hnsw_get_layout(const nn_hnsw *_Nonnull index, nn_hnsw_layout *_Nonnull out);

/// Node records from `first` on that are contiguous in memory: returns them and how many
/// (at least 1 while first < count). Records are `record_bytes` apart.
const void *_Nullable nn_hnsw_records(const nn_hnsw *_Nonnull index, size_t first, size_t *_Nonnull n);

/// The upper store's words from `first` on that are contiguous: returns them and how many.
const uint32_t *_Nullable nn_hnsw_upper_words(const nn_hnsw *_Nonnull index, uint64_t first,
                                              uint64_t *_Nonnull n);

/// Why saved data was refused.
typedef enum nn_corruption_kind {
    NN_CORRUPT_NONE = 0,
    NN_CORRUPT_LAYOUT,      ///< parameters or sizes that no graph of this format has
    NN_CORRUPT_ENTRY,       ///< an entry point out of range or on the wrong layer
    NN_CORRUPT_LEVEL,       ///< a node's level out of range, or upper links that do not fit
    NN_CORRUPT_FLAGS,       ///< unknown flag bits, or a removed count that disagrees
    NN_CORRUPT_LINK_COUNT,  ///< more links than the layer allows
    NN_CORRUPT_LINK,        ///< a link to a node that does not exist, or to itself
} nn_corruption_kind;

typedef struct nn_corruption {
    nn_corruption_kind kind;
    uint64_t node;          ///< the first offending node, where there is one
} nn_corruption;

/// How `nn_hnsw_open` uses the saved memory it is given.
typedef enum nn_open_mode {
    /// The graph owns copies; every record and link is validated first.
    NN_OPEN_COPY = 0,
    /// A read-only view of that memory, which must outlive the graph. Only the layout and entry
    /// point are validated: searches bound every link, so a damaged view returns poor results,
    /// never reads out of bounds.
    NN_OPEN_VIEW = 1,
    /// Validated like a copy, then used in place: the memory must be writable, private to this
    /// graph (a MAP_PRIVATE mapping, say) and outlive it. Whole blocks of records and whole
    /// upper segments stay where they are; only the partly filled last ones are copied, and a
    /// record is written only if its in-degree or lock word needs fixing. Opening a large graph
    /// then costs one read of it, and no allocation of its size.
    NN_OPEN_IN_PLACE = 2,
} nn_open_mode;

/// A graph over saved `records` (count * record_bytes bytes) and `upper` words, used as `mode`
/// says. NN_ERR_CORRUPT fills `why`.
nn_status nn_hnsw_open(const nn_hnsw_layout *_Nonnull layout, const void *_Nullable records,
                       const uint32_t *_Nullable upper, nn_open_mode mode, nn_isa isa,
                       nn_hnsw *_Nullable *_Nonnull out, nn_corruption *_Nonnull why);

// Inspection, for tests and tools.

/// The entry point's node and the top layer; false while the graph is empty.
bool nn_hnsw_entry(const nn_hnsw *_Nonnull index, uint32_t *_Nonnull node, uint32_t *_Nonnull level);
/// The external id and top layer of node `node` (< count).
uint64_t nn_hnsw_node_id(const nn_hnsw *_Nonnull index, uint32_t node);
uint32_t nn_hnsw_node_level(const nn_hnsw *_Nonnull index, uint32_t node);
bool nn_hnsw_node_removed(const nn_hnsw *_Nonnull index, uint32_t node);
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
