// Builds a full kernel family (every metric, one-to-one and one-to-many) from two primitives
// of one instruction set, so each instruction set writes only its squared-L2 and dot product.
//
// Use: define `static float nn_l2_<SFX>(a, b, dim)` and `nn_dot_<SFX>(a, b, dim)` with the
// target attribute ATTR, then write NN_KERNEL_FAMILY(SFX, ATTR). It defines
// `void nn_kernels_fill_<SFX>(nn_kernels *table)`.
#ifndef NN_KERNELS_FAMILY_H
#define NN_KERNELS_FAMILY_H

#include "nn_kernels.h"

// Prefetch the first cache lines of the row scanned next while this one is computed.
#define NN_PREFETCH_ROW(p, bytes)                                                    \
    do {                                                                             \
        const char *nn_p_ = (const char *)(p);                                       \
        size_t nn_lines_ = (bytes) < 256 ? ((bytes) + 63) / 64 : 4;                  \
        for (size_t nn_l_ = 0; nn_l_ < nn_lines_; nn_l_++)                           \
            __builtin_prefetch(nn_p_ + 64 * nn_l_, 0, 3);                             \
    } while (0)

#define NN_KERNEL_MANY(NAME, ONE, ATTR, POST)                                                 \
    ATTR static void NAME(const float *q, const float *const *rows, size_t n, size_t dim,      \
                          float *out) {                                                       \
        for (size_t i = 0; i < n; i++) {                                                      \
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
    NN_KERNEL_MANY(nn_l2_many_##SFX, nn_l2_##SFX, ATTR, v)                                    \
    NN_KERNEL_MANY(nn_ip_many_##SFX, nn_dot_##SFX, ATTR, -v)                                  \
    NN_KERNEL_MANY(nn_cos_many_##SFX, nn_dot_##SFX, ATTR, 1.0f - v)                           \
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
