// The OpenBLAS-specific calls, kept in one place.
#include "blas.h"
#include "nn_base.h"

#include <cblas.h>

void nn_blas_single_threaded(void) {
    // Checked on every sgemm-path search, not once per process: the host program may raise
    // OpenBLAS's thread count between searches. Reading it is a plain load; setting it takes
    // OpenBLAS's lock, so only when it changed.
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

const char *nn_blas_config(void) { return openblas_get_config(); }
