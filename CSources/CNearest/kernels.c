// Chooses a kernel family for a table; the table lives in the index that uses it.
#include "kernels_family.h"

#include <math.h>

nn_status nn_kernels_init(nn_kernels *table, nn_isa isa) {
    if (isa == NN_ISA_AUTO) isa = nn_isa_best();
    if (!nn_isa_supported(isa)) return NN_ERR_UNSUPPORTED;
    switch (isa) {
    case NN_ISA_SCALAR: nn_kernels_fill_scalar(table); break;
#if defined(__x86_64__)
    case NN_ISA_AVX2: nn_kernels_fill_avx2(table); break;
    case NN_ISA_AVX512: nn_kernels_fill_avx512(table); break;
#endif
#if defined(__aarch64__)
    case NN_ISA_NEON: nn_kernels_fill_neon(table); break;
#endif
    default: return NN_ERR_UNSUPPORTED;
    }
    table->isa = isa;
    return NN_OK;
}

bool nn_normalize(float *v, size_t dim) {
    double norm = 0.0;  // double: a 1536-dim sum of squares loses little, and this is off the hot path
    for (size_t i = 0; i < dim; i++) norm += (double)v[i] * v[i];
    if (!(norm > 0.0)) return false;
    // Scaled in double: for a tiny vector (norm 1e-45) the factor itself overflows a float.
    double inv = 1.0 / sqrt(norm);
    for (size_t i = 0; i < dim; i++) v[i] = (float)(v[i] * inv);
    return true;
}
