// Status codes, metrics and instruction sets shared by every part of the C core.
#ifndef NN_BASE_H
#define NN_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

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

/// What a call of the C core reports. The Swift façade maps each one to a typed error.
typedef enum nn_status {
    NN_OK = 0,
    NN_ERR_ARGUMENT = 1,      ///< an argument is out of its documented range
    NN_ERR_NO_MEMORY = 2,     ///< an allocation failed; nothing was changed
    NN_ERR_UNSUPPORTED = 3,   ///< e.g. an instruction set this CPU lacks
    NN_ERR_NOT_FINITE = 4,    ///< a vector holds NaN or ±Inf
    NN_ERR_ZERO_VECTOR = 5,   ///< a zero vector under the cosine metric
    // 6 was a duplicate-id status the core never reported; the number stays unused.
    NN_ERR_FULL = 7,          ///< a count would overflow the 32-bit node index
    NN_ERR_CORRUPT = 8,       ///< saved data fails validation (see nn_corruption)
    NN_ERR_READ_ONLY = 9,     ///< a change to a memory-mapped view
    NN_ERR_TOO_LARGE = 10,    ///< a vector so long that distances would overflow a float
} nn_status;

/// The largest squared length a vector may have under L2 and inner product: distances between
/// two such vectors stay within a float (|a - b|^2 <= 4 * max |v|^2).
#define NN_MAX_SQUARED_NORM (3.4028234663852886e38 / 4)

/// Distance metrics. Every distance is "smaller is closer":
/// - `NN_METRIC_L2`: squared Euclidean distance, sum (a_i - b_i)^2;
/// - `NN_METRIC_IP`: negated inner product, -sum a_i b_i;
/// - `NN_METRIC_COSINE`: 1 - cos(a, b); vectors are normalized to unit length on the way in,
///   so the kernels compute 1 - sum a_i b_i.
typedef enum nn_metric {
    NN_METRIC_L2 = 0,
    NN_METRIC_IP = 1,
    NN_METRIC_COSINE = 2,
} nn_metric;
#define NN_METRIC_COUNT 3

/// Instruction sets of the distance kernels. `NN_ISA_AUTO` asks for the best this CPU supports.
typedef enum nn_isa {
    NN_ISA_AUTO = 0,
    NN_ISA_SCALAR = 1,
    NN_ISA_AVX2 = 2,    ///< x86-64 AVX2 + FMA
    NN_ISA_AVX512 = 3,  ///< x86-64 AVX-512F
    NN_ISA_NEON = 4,    ///< arm64 Advanced SIMD
} nn_isa;

/// The id written into result slots that hold no neighbour (k larger than the index).
#define NN_NO_ID UINT64_MAX

/// A short lowercase name ("scalar", "avx2", "avx512", "neon", "auto").
const char *_Nonnull nn_isa_name(nn_isa isa);

/// True when this CPU (and OS) can run kernels of `isa`.
bool nn_isa_supported(nn_isa isa);

/// The best instruction set this CPU supports.
nn_isa nn_isa_best(void);

/// True when the core was compiled with OpenMP (`NEAREST_OPENMP=1`), false for the pthread pool.
bool nn_built_with_openmp(void);

/// CRC32C (Castagnoli) of `bytes`, continuing from `crc` (0 to start): SSE 4.2 where the CPU
/// has it, a table otherwise. Checksums the sections of saved indexes.
uint32_t nn_crc32c(uint32_t crc, const void *_Nonnull bytes, size_t length);

/// The BLAS library's own description of its build (OpenBLAS: version, kernel, threading).
const char *_Nonnull nn_blas_config(void);

/// The number of online processors.
size_t nn_hardware_threads(void);

/// Scans `n` rows of `dim` floats, `stride` floats apart, for NaN or ±Inf, under cosine for zero
/// vectors and, if `bounded`, under L2 and inner product for vectors longer than
/// NN_MAX_SQUARED_NORM allows (the graph's distances must stay finite; the flat index copes).
/// Returns NN_OK, NN_ERR_NOT_FINITE, NN_ERR_ZERO_VECTOR or NN_ERR_TOO_LARGE and the first bad row.
nn_status nn_validate_rows(const float *_Nonnull rows, size_t n, size_t dim, size_t stride,
                           nn_metric metric, bool bounded, size_t *_Nonnull bad_row);

#ifdef __cplusplus
}
#endif
#endif
