// The portable reference kernels: plain loops, one accumulator, any CPU.
#include "kernels_family.h"

// Row by row: the reference has no registers to share between rows.
NN_ROWS_INLINE void nn_l2_rows_scalar(const float *q, const float *const *rows, size_t R, size_t dim,
                                      float *out) {
    for (size_t r = 0; r < R; r++) {
        float sum = 0.0f;
        for (size_t i = 0; i < dim; i++) {
            float d = q[i] - rows[r][i];
            sum += d * d;
        }
        out[r] = sum;
    }
}

NN_ROWS_INLINE void nn_dot_rows_scalar(const float *q, const float *const *rows, size_t R, size_t dim,
                                       float *out) {
    for (size_t r = 0; r < R; r++) {
        float sum = 0.0f;
        for (size_t i = 0; i < dim; i++) sum += q[i] * rows[r][i];
        out[r] = sum;
    }
}

#define NN_NO_ATTR
NN_ROWS_FORMS(scalar, NN_NO_ATTR)
NN_KERNEL_FAMILY(scalar, NN_NO_ATTR)
