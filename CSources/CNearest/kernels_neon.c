// arm64 kernels: Advanced SIMD (NEON), mandatory on AArch64, so no run-time check is needed.
// Tested by cross-compiling the kernel checks and running them under qemu-user (.ci/run).
#include "kernels_family.h"

#if defined(__aarch64__)
#include <arm_neon.h>

static inline float32x4_t nn_l2_step_neon(float32x4_t x, float32x4_t r, float32x4_t s) {
    float32x4_t d = vsubq_f32(x, r);
    return vfmaq_f32(s, d, d);
}
static inline float32x4_t nn_dot_step_neon(float32x4_t x, float32x4_t r, float32x4_t s) { return vfmaq_f32(s, x, r); }

// 16-float steps into four accumulators, 4-float steps into the first, the tail (< 4) scalar.
#define NN_NEON_ROWS(NAME, STEP, STEP1)                                                        \
    NN_ROWS_INLINE void NAME(const float *q, const float *const *rows, size_t R, size_t dim,   \
                             float *out) {                                                     \
        float32x4_t s[4][4];                                                                   \
        for (size_t r = 0; r < R; r++)                                                         \
            for (size_t j = 0; j < 4; j++) s[r][j] = vdupq_n_f32(0);                           \
        size_t i = 0;                                                                          \
        for (; i + 16 <= dim; i += 16)                                                         \
            for (size_t j = 0; j < 4; j++) {                                                   \
                float32x4_t x = vld1q_f32(q + i + 4 * j);                                      \
                for (size_t r = 0; r < R; r++)                                                 \
                    s[r][j] = STEP(x, vld1q_f32(rows[r] + i + 4 * j), s[r][j]);                \
            }                                                                                  \
        for (; i + 4 <= dim; i += 4) {                                                         \
            float32x4_t x = vld1q_f32(q + i);                                                  \
            for (size_t r = 0; r < R; r++) s[r][0] = STEP(x, vld1q_f32(rows[r] + i), s[r][0]); \
        }                                                                                      \
        for (size_t r = 0; r < R; r++) {                                                       \
            float sum = vaddvq_f32(vaddq_f32(vaddq_f32(s[r][0], s[r][1]), vaddq_f32(s[r][2], s[r][3]))); \
            for (size_t t = i; t < dim; t++) sum = STEP1(q[t], rows[r][t], sum);               \
            out[r] = sum;                                                                      \
        }                                                                                      \
    }

NN_NEON_ROWS(nn_l2_rows_neon, nn_l2_step_neon, nn_l2_step1)
NN_NEON_ROWS(nn_dot_rows_neon, nn_dot_step_neon, nn_dot_step1)

#define NN_NO_ATTR
NN_ROWS_FORMS(neon, NN_NO_ATTR)
NN_KERNEL_FAMILY(neon, NN_NO_ATTR)

#endif
