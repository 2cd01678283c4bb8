// What the core needs from OpenBLAS beyond CBLAS itself.
#ifndef NN_BLAS_H
#define NN_BLAS_H

/// Makes BLAS calls run on the calling thread. The core parallelizes over query blocks and row
/// ranges itself, and OpenBLAS's own threads inside those tasks would oversubscribe the cores.
/// OpenBLAS keeps this setting per process, so the whole process sees it (documented in the
/// README); it is re-checked on every sgemm-path search in case something raised it since.
void nn_blas_single_threaded(void);

#endif
