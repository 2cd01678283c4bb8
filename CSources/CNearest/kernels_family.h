// Builds a full kernel family (every metric, one-to-one and one-to-many) from two bodies of
// one instruction set, so each instruction set writes only its squared L2 and dot product.
//
// Use: define, with the target attribute ATTR and NN_ROWS_INLINE,
//   `void nn_l2_rows_<SFX>(q, rows, R, dim, out)` and `void nn_dot_rows_<SFX>(q, rows, R, dim, out)`
// (rows[0..R) against q, R results in out), then write NN_ROWS_FORMS(SFX, ATTR) and
// NN_KERNEL_FAMILY(SFX, ATTR). That defines `void nn_kernels_fill_<SFX>(nn_kernels *table)`.
//
// A body is inlined with R = 1 (one-to-one) and R = 4 (four rows at a time, for one-to-many). It
// must run the same operations in the same order on every row whatever R is: then a distance
// is the same bits whichever form computed it, and the flat index's two paths report identical
// distances (kernel checks compare them bit for bit). Four rows at a time load each query chunk
// once for four rows and keep four rows' loads in flight: one-to-many calls are memory-bound
// (HNSW neighbours are scattered rows), and this gave 10-15% more HNSW queries/s on 384- and
// 784-d data.
#ifndef NN_KERNELS_FAMILY_H
#define NN_KERNELS_FAMILY_H

#include "nn_kernels.h"

#include <math.h>

// Prefetch the first cache lines of the row scanned next while this one is computed.
#define NN_PREFETCH_ROW(p, bytes)                                                    \
    do {                                                                             \
        const char *nn_p_ = (const char *)(p);                                       \
        size_t nn_lines_ = (bytes) < 256 ? ((bytes) + 63) / 64 : 4;                  \
        for (size_t nn_l_ = 0; nn_l_ < nn_lines_; nn_l_++)                           \
            __builtin_prefetch(nn_p_ + 64 * nn_l_, 0, 3);                             \
    } while (0)

#define NN_ROWS_INLINE static inline __attribute__((always_inline))

// One scalar step of each sum, for the bodies' tails: s + (x - r)^2 for squared L2, s + x r for
// the dot product. Always inlined, so they compile with the calling body's instruction set.
NN_ROWS_INLINE float nn_l2_step1(float x, float r, float s) { return fmaf(x - r, x - r, s); }
NN_ROWS_INLINE float nn_dot_step1(float x, float r, float s) { return fmaf(x, r, s); }

// The four primitives NN_KERNEL_FAMILY wants, from one body each.
#define NN_ROWS_FORMS(SFX, ATTR)                                                               \
    ATTR static float nn_l2_##SFX(const float *a, const float *b, size_t dim) {               \
        float out;                                                                             \
        nn_l2_rows_##SFX(a, &b, 1, dim, &out);                                                 \
        return out;                                                                            \
    }                                                                                          \
    ATTR static float nn_dot_##SFX(const float *a, const float *b, size_t dim) {              \
        float out;                                                                             \
        nn_dot_rows_##SFX(a, &b, 1, dim, &out);                                                \
        return out;                                                                            \
    }                                                                                          \
    ATTR static void nn_l2x4_##SFX(const float *q, const float *const *rows, size_t dim,      \
                                   float *out) {                                               \
        nn_l2_rows_##SFX(q, rows, 4, dim, out);                                                \
    }                                                                                          \
    ATTR static void nn_dotx4_##SFX(const float *q, const float *const *rows, size_t dim,     \
                                    float *out) {                                              \
        nn_dot_rows_##SFX(q, rows, 4, dim, out);                                               \
    }

// Rows in groups of four (prefetching the next group's first lines), then one at a time.
#define NN_KERNEL_MANY(NAME, ONE, FOUR, ATTR, POST)                                            \
    ATTR static void NAME(const float *q, const float *const *rows, size_t n, size_t dim,      \
                          float *out) {                                                       \
        size_t i = 0;                                                                         \
        for (; i + 4 <= n; i += 4) {                                                          \
            for (size_t j = i + 4; j < n && j < i + 8; j++)                                   \
                NN_PREFETCH_ROW(rows[j], dim * sizeof(float));                                \
            float four[4];                                                                    \
            FOUR(q, rows + i, dim, four);                                                     \
            for (size_t j = 0; j < 4; j++) {                                                  \
                float v = four[j];                                                            \
                out[i + j] = POST;                                                            \
            }                                                                                 \
        }                                                                                     \
        for (; i < n; i++) {                                                                  \
            if (i + 1 < n) NN_PREFETCH_ROW(rows[i + 1], dim * sizeof(float));                 \
            float v = ONE(q, rows[i], dim);                                                   \
            out[i] = POST;                                                                    \
        }                                                                                     \
    }

#define NN_KERNEL_FAMILY(SFX, ATTR)                                                            \
    ATTR static float nn_ip_##SFX(const float *a, const float *b, size_t dim) {               \
        return -nn_dot_##SFX(a, b, dim);                                                      \
    }                                                                                         \
    ATTR static float nn_cos_##SFX(const float *a, const float *b, size_t dim) {              \
        return 1.0f - nn_dot_##SFX(a, b, dim);                                                \
    }                                                                                         \
    NN_KERNEL_MANY(nn_l2_many_##SFX, nn_l2_##SFX, nn_l2x4_##SFX, ATTR, v)                     \
    NN_KERNEL_MANY(nn_ip_many_##SFX, nn_dot_##SFX, nn_dotx4_##SFX, ATTR, -v)                  \
    NN_KERNEL_MANY(nn_cos_many_##SFX, nn_dot_##SFX, nn_dotx4_##SFX, ATTR, 1.0f - v)           \
    void nn_kernels_fill_##SFX(nn_kernels *t) {                                               \
        t->distance[NN_METRIC_L2] = nn_l2_##SFX;                                              \
        t->distance[NN_METRIC_IP] = nn_ip_##SFX;                                              \
        t->distance[NN_METRIC_COSINE] = nn_cos_##SFX;                                         \
        t->distance_many[NN_METRIC_L2] = nn_l2_many_##SFX;                                    \
        t->distance_many[NN_METRIC_IP] = nn_ip_many_##SFX;                                    \
        t->distance_many[NN_METRIC_COSINE] = nn_cos_many_##SFX;                               \
    }

// The families compiled into this build; each fills a table.
void nn_kernels_fill_scalar(nn_kernels *t);
#if defined(__x86_64__)
void nn_kernels_fill_avx2(nn_kernels *t);
void nn_kernels_fill_avx512(nn_kernels *t);
#endif
#if defined(__aarch64__)
void nn_kernels_fill_neon(nn_kernels *t);
#endif

#endif
