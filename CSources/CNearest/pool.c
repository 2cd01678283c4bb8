// Parallel loops. Built with OpenMP, a pool is only a thread count and `nn_pool_run` is an
// OpenMP loop; otherwise it owns `threads - 1` pthreads that sleep between jobs.
#include "nn_pool.h"

#include <stdatomic.h>
#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>

struct nn_pool {
    size_t threads;
};

nn_status nn_pool_create(size_t threads, nn_pool **out) {
    nn_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NN_ERR_NO_MEMORY;
    pool->threads = threads ? threads : nn_hardware_threads();
    *out = pool;
    return NN_OK;
}

void nn_pool_destroy(nn_pool *pool) { free(pool); }

size_t nn_pool_threads(const nn_pool *pool) { return pool->threads; }

void nn_pool_run(nn_pool *pool, size_t tasks, nn_task_fn fn, void *context) {
    if (tasks == 0) return;
    int threads = (int)(pool->threads < tasks ? pool->threads : tasks);
    if (threads <= 1) {
        for (size_t t = 0; t < tasks; t++) fn(context, t, 0);
        return;
    }
    // Tasks are handed out by our own counter rather than `omp for schedule(dynamic)`: newer
    // clang emits dispatch calls (__kmpc_dispatch_deinit) that Debian's libomp 14 lacks, and a
    // bare parallel region needs only the oldest entry points.
    atomic_size_t next;
    atomic_init(&next, 0);
#pragma omp parallel num_threads(threads)
    {
        size_t worker = (size_t)omp_get_thread_num();
        for (;;) {
            size_t t = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
            if (t >= tasks) break;
            fn(context, t, worker);
        }
    }
}

#else
#include <pthread.h>

// One job at a time: `submit` serializes callers; workers wake on a new `generation`.
struct nn_pool {
    size_t threads;
    pthread_t *workers;             // threads - 1 of them; the caller is worker 0
    pthread_mutex_t submit;         // held by the caller for a whole job
    pthread_mutex_t lock;           // guards the fields below
    pthread_cond_t wake, done;
    uint64_t generation;            // bumped once per job
    size_t busy;                    // workers still inside the current job
    bool stopping;
    nn_task_fn fn;
    void *context;
    size_t tasks;
    atomic_size_t next;             // the next task to hand out
};

typedef struct {
    nn_pool *pool;
    size_t index;
} nn_worker_arg;

static void run_tasks(nn_pool *pool, nn_task_fn fn, void *context, size_t tasks, size_t worker) {
    for (;;) {
        size_t t = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
        if (t >= tasks) return;
        fn(context, t, worker);
    }
}

static void *worker_main(void *raw) {
    nn_worker_arg arg = *(nn_worker_arg *)raw;
    free(raw);
    nn_pool *pool = arg.pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stopping && pool->generation == seen) pthread_cond_wait(&pool->wake, &pool->lock);
        if (pool->stopping) break;
        seen = pool->generation;
        nn_task_fn fn = pool->fn;
        void *context = pool->context;
        size_t tasks = pool->tasks;
        pthread_mutex_unlock(&pool->lock);
        run_tasks(pool, fn, context, tasks, arg.index);
        pthread_mutex_lock(&pool->lock);
        if (--pool->busy == 0) pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

nn_status nn_pool_create(size_t threads, nn_pool **out) {
    nn_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NN_ERR_NO_MEMORY;
    pool->threads = threads ? threads : nn_hardware_threads();
    pthread_mutex_init(&pool->submit, NULL);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    atomic_init(&pool->next, 0);
    size_t extra = pool->threads - 1;
    pool->workers = extra ? calloc(extra, sizeof(pthread_t)) : NULL;
    if (extra && !pool->workers) {
        free(pool);
        return NN_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < extra; i++) {
        nn_worker_arg *arg = malloc(sizeof *arg);
        if (!arg || pthread_create(&pool->workers[i], NULL, worker_main,
                                   (*arg = (nn_worker_arg){pool, i + 1}, arg)) != 0) {
            free(arg);
            pool->threads = i + 1;  // run with the workers that did start
            break;
        }
    }
    *out = pool;
    return NN_OK;
}

void nn_pool_destroy(nn_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (size_t i = 0; i + 1 < pool->threads; i++) pthread_join(pool->workers[i], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->submit);
    free(pool->workers);
    free(pool);
}

size_t nn_pool_threads(const nn_pool *pool) { return pool->threads; }

void nn_pool_run(nn_pool *pool, size_t tasks, nn_task_fn fn, void *context) {
    if (tasks == 0) return;
    if (pool->threads <= 1 || tasks == 1) {
        for (size_t t = 0; t < tasks; t++) fn(context, t, 0);
        return;
    }
    pthread_mutex_lock(&pool->submit);
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->context = context;
    pool->tasks = tasks;
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    pool->busy = pool->threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);

    run_tasks(pool, fn, context, tasks, 0);

    pthread_mutex_lock(&pool->lock);
    while (pool->busy > 0) pthread_cond_wait(&pool->done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    pthread_mutex_unlock(&pool->submit);
}
#endif
