// The OpenBLAS-specific calls, kept in one place.
#include "blas.h"
#include "nn_base.h"

#include <cblas.h>
#include <stdatomic.h>

void nn_blas_single_threaded(void) {
    // Once per process is enough; repeated calls would take OpenBLAS's lock on every search.
    static atomic_flag done = ATOMIC_FLAG_INIT;
    if (!atomic_flag_test_and_set(&done)) openblas_set_num_threads(1);
}

const char *nn_blas_config(void) { return openblas_get_config(); }
