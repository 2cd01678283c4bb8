// sgemm timings against the system OpenBLAS (see CBenchBLAS.h).
#include "CBenchBLAS.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *nb_blas_config(void) { return openblas_get_config(); }
const char *nb_blas_corename(void) { return openblas_get_corename(); }
int nb_blas_threads(void) { return openblas_get_num_threads(); }
void nb_blas_set_threads(int threads) { openblas_set_num_threads(threads); }

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Deterministic values in [-1, 1): the peak must not depend on denormals or on a seed.
static void fill(float *values, size_t n, uint32_t seed) {
    uint32_t x = seed | 1u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        values[i] = (float)(x >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
}

int nb_sgemm_peak(size_t m, size_t n, size_t k, int threads, int max_repetitions,
                  double budget_seconds, nb_timing *out) {
    float *a = malloc(m * k * sizeof(float));
    float *b = malloc(n * k * sizeof(float));
    float *c = malloc(m * n * sizeof(float));
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return -1;
    }
    fill(a, m * k, 1);
    fill(b, n * k, 2);
    memset(c, 0, m * n * sizeof(float));
    int previous = openblas_get_num_threads();
    openblas_set_num_threads(threads);
    double best = INFINITY, spent = 0;
    int reps = 0;
    for (int i = -1; i < max_repetitions; i++) {  // i == -1: the warm-up
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k,
                    b, (int)k, 0.0f, c, (int)n);
        double t = now_seconds() - t0;
        if (i < 0) continue;
        reps++;
        spent += t;
        if (t < best) best = t;
        if (reps >= 2 && spent >= budget_seconds) break;
    }
    openblas_set_num_threads(previous);
    free(a);
    free(b);
    free(c);
    *out = (nb_timing){best, reps};
    return 0;
}

// ---------------------------------------------------------------------------------------------
// The sgemm phase of flat.c's blocked path, with its blocking and its threading, nothing else.

typedef struct phase {
    const float *queries;
    size_t ldq;
    const float *rows;
    size_t count, dim, row_block;
    size_t threads;
    float **scores;            // one query_block x row_block buffer per thread
    sem_t go;                  // released once the barriers exist (or the run is off)
    pthread_barrier_t start, finish;
    // The batch in flight, published before `start`.
    size_t q0, nq, query_block, ranges, tasks;
    atomic_size_t next;
    bool stopping;
} phase;

typedef struct {
    phase *phase;
    size_t index;
} phase_worker;

static void run_block(phase *p, size_t task, float *scores) {
    size_t block = task / p->ranges, range = task % p->ranges;
    size_t first = p->q0 + block * p->query_block;
    size_t left = p->q0 + p->nq - first;
    size_t nq = left < p->query_block ? left : p->query_block;
    const float *q = p->queries + first * p->ldq;
    size_t per = (p->count + p->ranges - 1) / p->ranges;
    size_t lo = range * per < p->count ? range * per : p->count;
    size_t hi = lo + per < p->count ? lo + per : p->count;
    for (size_t r0 = lo; r0 < hi; r0 += p->row_block) {
        size_t nr = hi - r0 < p->row_block ? hi - r0 : p->row_block;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nr, (int)p->dim, 1.0f, q,
                    (int)p->ldq, p->rows + r0 * p->dim, (int)p->dim, 0.0f, scores, (int)nr);
    }
}

static void run_batch(phase *p, size_t worker) {
    for (;;) {
        size_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->tasks) return;
        run_block(p, t, p->scores[worker]);
    }
}

static void *phase_main(void *raw) {
    phase_worker *w = raw;
    phase *p = w->phase;
    sem_wait(&p->go);
    if (p->stopping) return NULL;  // not every worker started: leave before any barrier
    for (;;) {
        pthread_barrier_wait(&p->start);
        if (p->stopping) return NULL;
        run_batch(p, w->index);
        pthread_barrier_wait(&p->finish);
    }
}

// flat.c's blas_search: enough query blocks for every thread, evened out; fewer, and each block
// is split into row ranges (one per thread, at least one row block each).
static void plan(phase *p, size_t max_query_block) {
    size_t blocks = (p->nq + max_query_block - 1) / max_query_block;
    p->ranges = 1;
    if (blocks >= p->threads) {
        blocks = (blocks + p->threads - 1) / p->threads * p->threads;
    } else {
        size_t most = p->count / p->row_block;
        p->ranges = p->threads < most ? p->threads : most ? most : 1;
    }
    p->query_block = (p->nq + blocks - 1) / blocks;
    p->tasks = (p->nq + p->query_block - 1) / p->query_block * p->ranges;
}

int nb_sgemm_phase(const float *queries, size_t nq, size_t ldq, size_t batch, const float *rows,
                   size_t count, size_t dim, size_t max_query_block, size_t row_block, int threads,
                   int repetitions, nb_timing *out) {
    if (threads < 1 || batch == 0 || max_query_block == 0 || row_block == 0) return -1;
    phase p = {.queries = queries, .ldq = ldq, .rows = rows, .count = count, .dim = dim,
               .row_block = row_block, .threads = (size_t)threads};
    p.scores = calloc(p.threads, sizeof(float *));
    pthread_t *workers = calloc(p.threads, sizeof(pthread_t));
    phase_worker *args = calloc(p.threads, sizeof(phase_worker));
    int status = -1;
    size_t started = 0;
    if (!p.scores || !workers || !args) goto out;
    for (size_t t = 0; t < p.threads; t++) {
        p.scores[t] = malloc(max_query_block * row_block * sizeof(float));
        if (!p.scores[t]) goto out;
        memset(p.scores[t], 0, max_query_block * row_block * sizeof(float));  // touch before timing
    }
    int previous = openblas_get_num_threads();
    openblas_set_num_threads(1);  // as nn_blas_single_threaded does
    sem_init(&p.go, 0, 0);
    for (size_t t = 1; t < p.threads; t++) {
        args[t] = (phase_worker){&p, t};
        if (pthread_create(&workers[t], NULL, phase_main, &args[t]) != 0) break;
        started++;
    }
    bool all = started + 1 == p.threads;
    if (all) {
        pthread_barrier_init(&p.start, NULL, (unsigned)p.threads);
        pthread_barrier_init(&p.finish, NULL, (unsigned)p.threads);
    } else {
        p.stopping = true;
    }
    for (size_t t = 0; t < started; t++) sem_post(&p.go);
    if (all) {
        double best = INFINITY;
        int reps = 0;
        for (int rep = -1; rep < repetitions; rep++) {  // rep == -1: the warm-up
            double t0 = now_seconds();
            for (size_t q0 = 0; q0 < nq; q0 += batch) {
                p.q0 = q0;
                p.nq = nq - q0 < batch ? nq - q0 : batch;
                plan(&p, max_query_block);
                atomic_store_explicit(&p.next, 0, memory_order_relaxed);
                if (p.threads == 1 || p.tasks == 1) {  // the pool runs these inline, no wake-up
                    run_batch(&p, 0);
                    continue;
                }
                pthread_barrier_wait(&p.start);
                run_batch(&p, 0);
                pthread_barrier_wait(&p.finish);
            }
            double t = now_seconds() - t0;
            if (rep < 0) continue;
            reps++;
            if (t < best) best = t;
        }
        *out = (nb_timing){best, reps};
        status = 0;
        p.stopping = true;
        if (p.threads > 1) pthread_barrier_wait(&p.start);  // the workers wake, see `stopping`, leave
    }
    for (size_t t = 1; t <= started; t++) pthread_join(workers[t], NULL);
    if (all) {
        pthread_barrier_destroy(&p.start);
        pthread_barrier_destroy(&p.finish);
    }
    sem_destroy(&p.go);
    openblas_set_num_threads(previous);
out:
    if (p.scores)
        for (size_t t = 0; t < p.threads; t++) free(p.scores[t]);
    free(p.scores);
    free(workers);
    free(args);
    return status;
}
