// Large allocations that searches hop or stream through.
#ifndef NN_MEMORY_H
#define NN_MEMORY_H

#include <stddef.h>

/// `bytes` of memory aligned to 64 bytes; from 2 MiB up, aligned to 2 MiB and advised into
/// transparent huge pages, so random hops and long scans stop missing the TLB. Free with free().
void *nn_alloc_large(size_t bytes);

#endif
