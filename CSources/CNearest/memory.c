// Large allocations: see memory.h.
#include "memory.h"

#include <stdlib.h>
#include <sys/mman.h>

void *nn_alloc_large(size_t bytes) {
    enum { HUGE_PAGE = 2u << 20 };
    if (bytes < HUGE_PAGE) return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    size_t rounded = (bytes + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
    void *block = aligned_alloc(HUGE_PAGE, rounded);
#ifdef MADV_HUGEPAGE
    if (block) madvise(block, rounded, MADV_HUGEPAGE);  // advice only: failure changes nothing
#endif
    return block;
}
