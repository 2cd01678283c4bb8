// Parallel loops: OpenMP when built with it (`NEAREST_OPENMP=1`), otherwise a small pthread
// pool, behind one interface so the rest of the core never knows which.
#ifndef NN_POOL_H
#define NN_POOL_H

#include "nn_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nn_pool nn_pool;

/// One unit of work: `task` in [0, tasks), `worker` in [0, nn_pool_threads(pool)).
/// A worker index is stable for the duration of one task, so it can select per-thread scratch.
typedef void (*nn_task_fn)(void *_Nullable context, size_t task, size_t worker);

/// A pool of `threads` workers (0: one per online processor). The calling thread is worker 0.
nn_status nn_pool_create(size_t threads, nn_pool *_Nullable *_Nonnull out);
void nn_pool_destroy(nn_pool *_Nullable pool);
size_t nn_pool_threads(const nn_pool *_Nonnull pool);

/// Runs `fn` for every task in [0, tasks) and returns when all are done. Tasks are handed out
/// dynamically. Calls from several threads on one pool are serialized.
void nn_pool_run(nn_pool *_Nonnull pool, size_t tasks, nn_task_fn _Nonnull fn,
                 void *_Nullable context);

#ifdef __cplusplus
}
#endif
#endif
