// Raw sgemm timings for the benchmarks: the machine's sgemm peak, and the sgemm phase of the
// flat index's blocked path on its own, so a report can say how much of a search is sgemm and
// how close that sgemm runs to the peak. Benchmark support only: no stable API.
#ifndef CBENCHBLAS_H
#define CBENCHBLAS_H

#include <stddef.h>

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if !__has_feature(nullability)
#define _Nonnull
#define _Nullable
#endif

#ifdef __cplusplus
extern "C" {
#endif

/// OpenBLAS's description of its build ("OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell ...").
const char *_Nonnull nb_blas_config(void);

/// The CPU kernel OpenBLAS chose at start-up ("Haswell", "SkylakeX"); OPENBLAS_CORETYPE overrides it.
const char *_Nonnull nb_blas_corename(void);

/// Hands memory the allocator keeps after frees back to the system (glibc malloc_trim), so a
/// peak-RSS reading that follows starts from what is really in use. Nothing elsewhere.
void nb_release_free_memory(void);

/// OpenBLAS's thread count for the whole process.
int nb_blas_threads(void);
void nb_blas_set_threads(int threads);

/// The fastest of several timed repetitions.
typedef struct nb_timing {
    double best_seconds;
    int repetitions;
} nb_timing;

/// Times the product of an m x k and an n x k matrix (row-major, C = A B^T, the shape flat.c
/// uses) on random data, with `threads` OpenBLAS threads: one warm-up call, then up to
/// `max_repetitions` (at least 2) while the total stays within `budget_seconds`.
/// OpenBLAS's thread count is restored afterwards. Returns 0, or -1 when memory runs out.
int nb_sgemm_peak(size_t m, size_t n, size_t k, int threads, int max_repetitions,
                  double budget_seconds, nb_timing *_Nonnull out);

/// Times the sgemm calls alone that CSources/CNearest/flat.c makes on its blocked path for a
/// pass over `nq` queries (`ldq` floats apart, unit-normalized beforehand where the metric asks)
/// in batches of `batch`, planned as flat.c's blas_search plans them: with at least `threads`
/// blocks of `max_query_block` queries, the batch is cut into a multiple of `threads` even
/// blocks, each against all rows; with fewer, each block is split into one row range per thread
/// (at least `row_block` rows each). Tasks are handed out to `threads` threads; each multiplies
/// its block by `row_block` rows at a time (`rows`: `count` x `dim`, contiguous) into the
/// thread's own score buffer, with OpenBLAS single-threaded inside. Threads and buffers are set up before the clock
/// starts; batches are separated by a barrier, as the index's pool separates them. Best of
/// `repetitions` passes. Returns 0, or -1 when memory or threads run out.
int nb_sgemm_phase(const float *_Nonnull queries, size_t nq, size_t ldq, size_t batch,
                   const float *_Nonnull rows, size_t count, size_t dim, size_t max_query_block,
                   size_t row_block, int threads, int repetitions, nb_timing *_Nonnull out);

#ifdef __cplusplus
}
#endif
#endif
