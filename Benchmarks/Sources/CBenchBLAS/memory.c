#include "CBenchBLAS.h"

#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif

void nb_release_free_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
