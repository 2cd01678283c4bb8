// Why this shim exists: OpenBLAS's CBLAS header, reached through pkg-config `openblas`
// (Debian: libopenblas-dev), so the C core can call sgemm without hard-coding paths.
#include <cblas.h>
