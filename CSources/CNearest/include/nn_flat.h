// The exact flat index: every query is compared with every row.
//
// Small batches run the SIMD one-to-many kernel; larger ones run blocked sgemm over a block of
// queries and a block of rows with precomputed norms (L2 = |x|^2 + |q|^2 - 2 x.q, clamped at 0),
// keeping a few extra candidates that are re-ranked with the exact kernel, so both paths return
// the same ids and the same distances. Small batches split the rows between the threads, large
// ones the queries. Memory stays bounded by one score block per running task; those blocks are
// kept with the index between searches and freed with it.
#ifndef NN_FLAT_H
#define NN_FLAT_H

#include "nn_base.h"
#include "nn_kernels.h"
#include "nn_pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nn_flat nn_flat;

/// An empty index of `dim`-dimensional rows, with kernels of `isa` (NN_ISA_AUTO: the best).
nn_status nn_flat_create(size_t dim, nn_metric metric, nn_isa isa, nn_flat *_Nullable *_Nonnull out);
void nn_flat_destroy(nn_flat *_Nullable flat);

size_t nn_flat_count(const nn_flat *_Nonnull flat);
size_t nn_flat_dim(const nn_flat *_Nonnull flat);
nn_isa nn_flat_isa(const nn_flat *_Nonnull flat);

/// Appends `n` rows, `stride` floats apart (stride >= dim), copying them; the first gets the
/// next row number. Cosine rows are normalized. The caller validates (nn_validate_rows).
nn_status nn_flat_add(nn_flat *_Nonnull flat, const float *_Nonnull rows, size_t n, size_t stride);

/// Makes room for `rows` rows in all, with the memory touched: adds up to that many then
/// allocate nothing and take no page faults.
nn_status nn_flat_reserve(nn_flat *_Nonnull flat, size_t rows);

/// Row `row` as stored (normalized under cosine).
const float *_Nullable nn_flat_row(const nn_flat *_Nonnull flat, size_t row);

/// The smallest batch that goes through sgemm; below it, the SIMD loop.
size_t nn_flat_blas_threshold(const nn_flat *_Nonnull flat);
void nn_flat_set_blas_threshold(nn_flat *_Nonnull flat, size_t min_batch);

/// Times both paths on this index's own rows and sets the threshold where sgemm starts to win.
/// Not thread-safe with searches on the same index.
nn_status nn_flat_calibrate(nn_flat *_Nonnull flat, nn_pool *_Nonnull pool);

/// Exact top-`k` for `nq` queries, `query_stride` floats apart. Writes `nq * k` ids (row numbers)
/// and distances, nearest first, ties broken by the smaller row; slots beyond the row count get
/// id NN_NO_ID and distance +Inf. Safe to call from several threads at once.
nn_status nn_flat_search(const nn_flat *_Nonnull flat, nn_pool *_Nonnull pool,
                         const float *_Nonnull queries, size_t nq, size_t query_stride, size_t k,
                         uint64_t *_Nonnull ids, float *_Nonnull distances);

/// The same, forcing one path (for calibration, tests and benchmarks): `use_blas` true or false.
nn_status nn_flat_search_path(const nn_flat *_Nonnull flat, nn_pool *_Nonnull pool,
                              const float *_Nonnull queries, size_t nq, size_t query_stride,
                              size_t k, bool use_blas, uint64_t *_Nonnull ids,
                              float *_Nonnull distances);

#ifdef __cplusplus
}
#endif
#endif
