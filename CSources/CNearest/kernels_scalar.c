// The portable reference kernels: plain loops, one accumulator, any CPU.
#include "kernels_family.h"

static float nn_l2_scalar(const float *a, const float *b, size_t dim) {
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) {
        float d = a[i] - b[i];
        sum += d * d;
    }
    return sum;
}

static float nn_dot_scalar(const float *a, const float *b, size_t dim) {
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) sum += a[i] * b[i];
    return sum;
}

#define NN_NO_ATTR
NN_KERNEL_FAMILY(scalar, NN_NO_ATTR)
