// x86-64 kernels: AVX2+FMA and AVX-512F variants compiled with target attributes, so one
// binary built without -march carries both and the CPU picks at run time.
#include "kernels_family.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define NN_AVX2 __attribute__((target("avx2,fma")))
#define NN_AVX512 __attribute__((target("avx512f,avx2,fma")))

NN_AVX2 static inline float nn_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// One vector step of each sum: s + (x - r)^2 for squared L2, s + x r for the dot product.
NN_AVX2 NN_ROWS_INLINE __m256 nn_l2_step256(__m256 x, __m256 r, __m256 s) {
    __m256 d = _mm256_sub_ps(x, r);
    return _mm256_fmadd_ps(d, d, s);
}
NN_AVX2 NN_ROWS_INLINE __m256 nn_dot_step256(__m256 x, __m256 r, __m256 s) { return _mm256_fmadd_ps(x, r, s); }

// 32-float steps into four accumulators, 8-float steps into the first, the tail (< 8) scalar.
#define NN_AVX2_ROWS(NAME, STEP, STEP1)                                                        \
    NN_AVX2 NN_ROWS_INLINE void NAME(const float *q, const float *const *rows, size_t R,       \
                                     size_t dim, float *out) {                                 \
        __m256 s[4][4];                                                                        \
        for (size_t r = 0; r < R; r++)                                                         \
            for (size_t j = 0; j < 4; j++) s[r][j] = _mm256_setzero_ps();                      \
        size_t i = 0;                                                                          \
        for (; i + 32 <= dim; i += 32)                                                         \
            for (size_t j = 0; j < 4; j++) {                                                   \
                __m256 x = _mm256_loadu_ps(q + i + 8 * j);                                     \
                for (size_t r = 0; r < R; r++)                                                 \
                    s[r][j] = STEP(x, _mm256_loadu_ps(rows[r] + i + 8 * j), s[r][j]);          \
            }                                                                                  \
        for (; i + 8 <= dim; i += 8) {                                                         \
            __m256 x = _mm256_loadu_ps(q + i);                                                 \
            for (size_t r = 0; r < R; r++) s[r][0] = STEP(x, _mm256_loadu_ps(rows[r] + i), s[r][0]); \
        }                                                                                      \
        for (size_t r = 0; r < R; r++) {                                                       \
            float sum = nn_hsum256(_mm256_add_ps(_mm256_add_ps(s[r][0], s[r][1]),              \
                                                 _mm256_add_ps(s[r][2], s[r][3])));            \
            for (size_t t = i; t < dim; t++) sum = STEP1(q[t], rows[r][t], sum);               \
            out[r] = sum;                                                                      \
        }                                                                                      \
    }

NN_AVX2_ROWS(nn_l2_rows_avx2, nn_l2_step256, nn_l2_step1)
NN_AVX2_ROWS(nn_dot_rows_avx2, nn_dot_step256, nn_dot_step1)

NN_ROWS_FORMS(avx2, NN_AVX2)
NN_KERNEL_FAMILY(avx2, NN_AVX2)

NN_AVX512 NN_ROWS_INLINE __m512 nn_l2_step512(__m512 x, __m512 r, __m512 s) {
    __m512 d = _mm512_sub_ps(x, r);
    return _mm512_fmadd_ps(d, d, s);
}
NN_AVX512 NN_ROWS_INLINE __m512 nn_dot_step512(__m512 x, __m512 r, __m512 s) { return _mm512_fmadd_ps(x, r, s); }

// 64-float steps into four accumulators, 16-float steps into the first, and the tail (< 16) as
// one masked load into the second: masked-off lanes are neither read nor faulted.
#define NN_AVX512_ROWS(NAME, STEP)                                                             \
    NN_AVX512 NN_ROWS_INLINE void NAME(const float *q, const float *const *rows, size_t R,     \
                                       size_t dim, float *out) {                               \
        __m512 s[4][4];                                                                        \
        for (size_t r = 0; r < R; r++)                                                         \
            for (size_t j = 0; j < 4; j++) s[r][j] = _mm512_setzero_ps();                      \
        size_t i = 0;                                                                          \
        for (; i + 64 <= dim; i += 64)                                                         \
            for (size_t j = 0; j < 4; j++) {                                                   \
                __m512 x = _mm512_loadu_ps(q + i + 16 * j);                                    \
                for (size_t r = 0; r < R; r++)                                                 \
                    s[r][j] = STEP(x, _mm512_loadu_ps(rows[r] + i + 16 * j), s[r][j]);         \
            }                                                                                  \
        for (; i + 16 <= dim; i += 16) {                                                       \
            __m512 x = _mm512_loadu_ps(q + i);                                                 \
            for (size_t r = 0; r < R; r++) s[r][0] = STEP(x, _mm512_loadu_ps(rows[r] + i), s[r][0]); \
        }                                                                                      \
        if (i < dim) {                                                                         \
            __mmask16 m = (__mmask16)((1u << (dim - i)) - 1);                                  \
            __m512 x = _mm512_maskz_loadu_ps(m, q + i);                                        \
            for (size_t r = 0; r < R; r++)                                                     \
                s[r][1] = STEP(x, _mm512_maskz_loadu_ps(m, rows[r] + i), s[r][1]);             \
        }                                                                                      \
        for (size_t r = 0; r < R; r++)                                                         \
            out[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s[r][0], s[r][1]),       \
                                                        _mm512_add_ps(s[r][2], s[r][3])));     \
    }

NN_AVX512_ROWS(nn_l2_rows_avx512, nn_l2_step512)
NN_AVX512_ROWS(nn_dot_rows_avx512, nn_dot_step512)
NN_ROWS_FORMS(avx512, NN_AVX512)

NN_KERNEL_FAMILY(avx512, NN_AVX512)

#endif
