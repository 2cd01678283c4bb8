// Distance kernels: one-to-one and one-to-many, per metric, per instruction set.
//
// The kernels are chosen once, by CPU detection, into an `nn_kernels` table that each index
// owns; there is no global function pointer to race on or to patch.
#ifndef NN_KERNELS_H
#define NN_KERNELS_H

#include "nn_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Distance between two vectors of `dim` floats, as the metric defines it (see `nn_metric`).
typedef float (*nn_distance_fn)(const float *_Nonnull a, const float *_Nonnull b, size_t dim);

/// Distances from `query` to `n` vectors, `out[i]` to `rows[i]`: four rows at a time, the next
/// four prefetched while they are computed, each distance the same bits as `nn_distance_fn`
/// gives. This is the HNSW layer-0 neighbour scan (all unvisited neighbours of a node in one
/// call) and the flat index's SIMD path. Rows are pointers, not indexes, because HNSW storage
/// grows in blocks that never move.
typedef void (*nn_distance_many_fn)(const float *_Nonnull query,
                                    const float *_Nonnull const *_Nonnull rows, size_t n,
                                    size_t dim, float *_Nonnull out);

typedef struct nn_kernels {
    nn_isa isa;                                       ///< the instruction set chosen
    nn_distance_fn _Nonnull distance[NN_METRIC_COUNT];  ///< indexed by nn_metric
    nn_distance_many_fn _Nonnull distance_many[NN_METRIC_COUNT];
} nn_kernels;

/// Fills `table` with the kernels of `isa` (NN_ISA_AUTO: the best supported).
/// NN_ERR_UNSUPPORTED when this CPU cannot run `isa` or the build does not contain it.
nn_status nn_kernels_init(nn_kernels *_Nonnull table, nn_isa isa);

/// Scales `v` to unit length in place; returns false (and leaves `v`) for a zero vector.
bool nn_normalize(float *_Nonnull v, size_t dim);

#ifdef __cplusplus
}
#endif
#endif
