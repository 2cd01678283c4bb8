// Why this shim exists: the benchmarks time raw sgemm calls against the same system OpenBLAS
// the C core links (pkg-config `openblas`; Debian: libopenblas-dev). The root package's own
// COpenBLAS module is an implementation detail, not a product, so it cannot be named from here.
#include <cblas.h>
