// Kernel checks shared by the Swift tests and the cross-compiled runner (Tests/cross), so the
// NEON kernels are checked by exactly the code that checks the x86 ones.
#ifndef CKERNELCHECKS_H
#define CKERNELCHECKS_H

#include <stddef.h>
#include "nn_base.h"

/// Compares every kernel of `isa` (each metric, one-to-one and one-to-many over rows in
/// order and shuffled) with a double-precision reference for dimensions 1...300, 384, 768, 784, 1024 and
/// 1536, at unaligned starts, with each tail ending on a guard page. Returns the number of
/// failures and writes the first into `message`; -1 when `isa` cannot run here.
int nn_check_kernels(nn_isa isa, char *_Nonnull message, size_t message_size);

/// Runs the flat index's top-k selection (quickselect, threshold and cut) over 20,000 random
/// streams, with ties, signed zeros, infinities and NaN, and compares each result with a sort.
/// Returns the number of failures and writes the first into `message`.
int nn_check_topk(char *_Nonnull message, size_t message_size);

#endif
