// The exact flat index (see nn_flat.h for the two search paths and why they agree).
#include "nn_flat.h"

#include "blas.h"
#include "heap.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


enum {
    SIMD_BLOCK = 1024,        // distances computed per kernel call on the SIMD path
    SIMD_CHUNK_MIN = 4096,    // fewest rows worth a task of their own when one query is split
    BLAS_QUERY_BLOCK = 256,   // queries per sgemm
    BLAS_ROW_BLOCK = 2048,    // rows per sgemm: a score block is at most 2 MiB
    DEFAULT_THRESHOLD = 16,   // until calibrated
};

struct nn_flat {
    size_t dim;
    nn_metric metric;
    nn_kernels kernels;
    float *rows;            // count x dim, normalized under cosine
    float *norms;           // |x|^2 per row, for the L2 expansion on the sgemm path
    float max_norm;         // the largest |x|^2: bounds the expansion's rounding error
    size_t count;
    size_t capacity;        // rows allocated
    size_t blas_threshold;  // smallest batch for the sgemm path
};

nn_status nn_flat_create(size_t dim, nn_metric metric, nn_isa isa, nn_flat **out) {
    if (dim == 0 || (unsigned)metric >= NN_METRIC_COUNT) return NN_ERR_ARGUMENT;
    nn_flat *flat = calloc(1, sizeof *flat);
    if (!flat) return NN_ERR_NO_MEMORY;
    nn_status status = nn_kernels_init(&flat->kernels, isa);
    if (status != NN_OK) {
        free(flat);
        return status;
    }
    flat->dim = dim;
    flat->metric = metric;
    flat->blas_threshold = DEFAULT_THRESHOLD;
    *out = flat;
    return NN_OK;
}

void nn_flat_destroy(nn_flat *flat) {
    if (!flat) return;
    free(flat->rows);
    free(flat->norms);
    free(flat);
}

size_t nn_flat_count(const nn_flat *flat) { return flat->count; }
size_t nn_flat_dim(const nn_flat *flat) { return flat->dim; }
nn_isa nn_flat_isa(const nn_flat *flat) { return flat->kernels.isa; }
size_t nn_flat_blas_threshold(const nn_flat *flat) { return flat->blas_threshold; }
void nn_flat_set_blas_threshold(nn_flat *flat, size_t min_batch) {
    flat->blas_threshold = min_batch ? min_batch : 1;
}

const float *nn_flat_row(const nn_flat *flat, size_t row) {
    return row < flat->count ? flat->rows + row * flat->dim : NULL;
}

static nn_status reserve(nn_flat *flat, size_t needed) {
    if (needed <= flat->capacity) return NN_OK;
    size_t capacity = flat->capacity ? flat->capacity : 1024;
    while (capacity < needed) capacity *= 2;
    float *rows = realloc(flat->rows, capacity * flat->dim * sizeof(float));
    if (!rows) return NN_ERR_NO_MEMORY;
    flat->rows = rows;
    float *norms = realloc(flat->norms, capacity * sizeof(float));
    if (!norms) return NN_ERR_NO_MEMORY;  // rows grew, count did not: nothing is lost
    flat->norms = norms;
    flat->capacity = capacity;
    return NN_OK;
}

nn_status nn_flat_add(nn_flat *flat, const float *rows, size_t n, size_t stride) {
    if (stride < flat->dim) return NN_ERR_ARGUMENT;
    if (n > UINT32_MAX - flat->count) return NN_ERR_FULL;
    nn_status status = reserve(flat, flat->count + n);
    if (status != NN_OK) return status;
    for (size_t r = 0; r < n; r++) {
        float *dst = flat->rows + (flat->count + r) * flat->dim;
        memcpy(dst, rows + r * stride, flat->dim * sizeof(float));
        if (flat->metric == NN_METRIC_COSINE) nn_normalize(dst, flat->dim);
        float norm = -flat->kernels.distance[NN_METRIC_IP](dst, dst, flat->dim);
        flat->norms[flat->count + r] = norm;
        if (norm > flat->max_norm) flat->max_norm = norm;
    }
    flat->count += n;
    return NN_OK;
}

// ---------------------------------------------------------------------------------------------
// One search: its queries (normalized under cosine), sizes, and where results go.

typedef struct search_job {
    const nn_flat *flat;
    const float *queries;  // nq rows, `ldq` floats apart
    size_t ldq;
    size_t nq;
    size_t k;              // results per query (<= count)
    size_t keep;           // candidates kept per query before the final cut
    size_t chunks;         // SIMD path: row ranges per query
    size_t query_block;    // sgemm path: queries per task
    nn_scored *partial;    // SIMD path: nq * chunks * k pairs
    uint64_t *ids;
    float *distances;
    size_t out_k;          // the caller's k (>= k), for the output stride
    bool failed;           // an allocation inside a task failed
} search_job;

static void write_results(const search_job *job, size_t q, const nn_scored *best, size_t n) {
    uint64_t *ids = job->ids + q * job->out_k;
    float *distances = job->distances + q * job->out_k;
    for (size_t i = 0; i < job->out_k; i++) {
        ids[i] = i < n ? (uint64_t)best[i].id : NN_NO_ID;
        distances[i] = i < n ? best[i].distance : INFINITY;
    }
}

// The exact scan of rows [lo, hi) into a bounded top-k heap, with the SIMD kernel.
static void scan_rows(const nn_flat *flat, const float *query, size_t lo, size_t hi, nn_heap *heap) {
    float scores[SIMD_BLOCK];
    const float *rows[SIMD_BLOCK];
    nn_distance_many_fn many = flat->kernels.distance_many[flat->metric];
    for (size_t r0 = lo; r0 < hi; r0 += SIMD_BLOCK) {
        size_t n = hi - r0 < SIMD_BLOCK ? hi - r0 : SIMD_BLOCK;
        for (size_t j = 0; j < n; j++) rows[j] = flat->rows + (r0 + j) * flat->dim;
        many(query, rows, n, flat->dim, scores);
        for (size_t j = 0; j < n; j++) nn_topk_offer(heap, (nn_scored){scores[j], (uint32_t)(r0 + j)});
    }
}

// SIMD path: task = (query, row range). Each range keeps its own top-k; they merge after.
static void simd_task(void *raw, size_t task, size_t worker) {
    (void)worker;
    search_job *job = raw;
    const nn_flat *flat = job->flat;
    size_t q = task / job->chunks, chunk = task % job->chunks;
    size_t per = (flat->count + job->chunks - 1) / job->chunks;
    size_t lo = chunk * per < flat->count ? chunk * per : flat->count;
    size_t hi = lo + per < flat->count ? lo + per : flat->count;
    nn_heap heap = nn_heap_over(job->partial + task * job->k, job->k);
    scan_rows(flat, job->queries + q * job->ldq, lo, hi, &heap);
    // Unfilled slots (a range shorter than k) stay marked with +Inf and are skipped at merge.
    for (size_t i = heap.size; i < job->k; i++) heap.items[i] = (nn_scored){INFINITY, UINT32_MAX};
}

static void simd_merge(search_job *job) {
    nn_scored *merged = job->partial;  // reuse: query q's chunks are contiguous
    for (size_t q = 0; q < job->nq; q++) {
        nn_scored *all = merged + q * job->chunks * job->k;
        size_t n = job->chunks * job->k;
        nn_scored_sort(all, n);
        write_results(job, q, all, job->k);
    }
}

// Blocked sgemm path: task = a block of queries against every row block.
static float blas_distance(nn_metric metric, float dot, float row_norm, float query_norm) {
    switch (metric) {
    case NN_METRIC_L2: {
        float d = row_norm + query_norm - 2.0f * dot;
        if (d != d) return INFINITY;  // norms that overflow: inf - inf
        return d > 0.0f ? d : 0.0f;   // cancellation can dip below zero
    }
    case NN_METRIC_IP: return -dot;
    case NN_METRIC_COSINE: return 1.0f - dot;
    }
    return dot;
}

// A bound on |approximate - exact| for the sgemm path's distances: a d-term float dot product
// errs by at most about (d + 2) eps |x| |q| (Higham), and the L2 expansion adds the norms' own.
static float expansion_error(const nn_flat *flat, float query_norm) {
    float gamma = (float)(flat->dim + 2) * FLT_EPSILON;
    float x = sqrtf(flat->max_norm), q = sqrtf(query_norm);
    switch (flat->metric) {
    case NN_METRIC_L2: return gamma * (x + q) * (x + q);
    case NN_METRIC_IP: return 2.0f * gamma * x * q;
    case NN_METRIC_COSINE: return 2.0f * gamma;
    }
    return INFINITY;
}

static void blas_task(void *raw, size_t task, size_t worker) {
    (void)worker;
    search_job *job = raw;
    const nn_flat *flat = job->flat;
    size_t dim = flat->dim;
    size_t q0 = task * job->query_block;
    size_t nq = job->nq - q0 < job->query_block ? job->nq - q0 : job->query_block;
    float *scores = malloc(nq * BLAS_ROW_BLOCK * sizeof(float));
    nn_scored *kept = malloc(nq * job->keep * sizeof(nn_scored));
    float *query_norms = malloc(nq * sizeof(float));
    if (!scores || !kept || !query_norms) {
        job->failed = true;
        goto out;
    }
    const float *queries = job->queries + q0 * job->ldq;
    nn_heap heaps_storage[BLAS_QUERY_BLOCK];
    nn_heap *heaps = heaps_storage;
    for (size_t i = 0; i < nq; i++) {
        heaps[i] = nn_heap_over(kept + i * job->keep, job->keep);
        const float *q = queries + i * job->ldq;
        query_norms[i] = -flat->kernels.distance[NN_METRIC_IP](q, q, dim);
    }
    for (size_t r0 = 0; r0 < flat->count; r0 += BLAS_ROW_BLOCK) {
        size_t nr = flat->count - r0 < BLAS_ROW_BLOCK ? flat->count - r0 : BLAS_ROW_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nr, (int)dim, 1.0f,
                    queries, (int)job->ldq, flat->rows + r0 * dim, (int)dim, 0.0f, scores, (int)nr);
        for (size_t i = 0; i < nq; i++) {
            const float *s = scores + i * nr;
            nn_heap *heap = &heaps[i];
            for (size_t j = 0; j < nr; j++) {
                float d = blas_distance(flat->metric, s[j], flat->norms[r0 + j], query_norms[i]);
                // Cheap reject before building a pair: most rows lose to the current worst.
                if (heap->size == heap->capacity && d > heap->items[0].distance) continue;
                nn_topk_offer(heap, (nn_scored){d, (uint32_t)(r0 + j)});
            }
        }
    }
    // Re-rank the kept candidates with the exact kernel: the expansion above loses digits to
    // cancellation, and this makes both paths report the same distances. If a row left out could
    // still beat the k-th kept one within the expansion's error bound, scan that query exactly.
    for (size_t i = 0; i < nq; i++) {
        nn_heap *heap = &heaps[i];
        const float *q = queries + i * job->ldq;
        bool some_left_out = heap->size == heap->capacity && heap->capacity < flat->count;
        float cutoff = some_left_out ? heap->items[0].distance : INFINITY;
        for (size_t c = 0; c < heap->size; c++)
            heap->items[c].distance =
                flat->kernels.distance[flat->metric](q, flat->rows + (size_t)heap->items[c].id * dim, dim);
        nn_scored_sort(heap->items, heap->size);
        if (some_left_out) {
            float kth = heap->items[job->k - 1].distance;
            float error = expansion_error(flat, query_norms[i]);
            if (!(cutoff - 2.0f * error > kth)) {  // also taken when the bound is NaN or infinite
                *heap = nn_heap_over(heap->items, job->k);
                scan_rows(flat, q, 0, flat->count, heap);
                nn_scored_sort(heap->items, heap->size);
            }
        }
        write_results(job, q0 + i, heap->items, job->k);
    }
out:
    free(scores);
    free(kept);
    free(query_norms);
}

nn_status nn_flat_search_path(const nn_flat *flat, nn_pool *pool, const float *queries, size_t nq,
                              size_t query_stride, size_t k, bool use_blas, uint64_t *ids,
                              float *distances) {
    if (k == 0 || query_stride < flat->dim) return NN_ERR_ARGUMENT;
    if (nq == 0) return NN_OK;
    search_job job = {.flat = flat, .queries = queries, .ldq = query_stride, .nq = nq,
                      .k = k < flat->count ? k : flat->count, .out_k = k, .ids = ids,
                      .distances = distances};
    if (job.k == 0) {  // an empty index: every slot is empty
        for (size_t q = 0; q < nq; q++) write_results(&job, q, NULL, 0);
        return NN_OK;
    }
    float *normalized = NULL;
    if (flat->metric == NN_METRIC_COSINE) {
        normalized = malloc(nq * flat->dim * sizeof(float));
        if (!normalized) return NN_ERR_NO_MEMORY;
        for (size_t q = 0; q < nq; q++) {
            memcpy(normalized + q * flat->dim, queries + q * query_stride, flat->dim * sizeof(float));
            nn_normalize(normalized + q * flat->dim, flat->dim);
        }
        job.queries = normalized;
        job.ldq = flat->dim;
    }
    size_t threads = nn_pool_threads(pool);
    nn_status status = NN_OK;
    if (use_blas) {
        // BLAS runs single-threaded inside our tasks: its own threads would oversubscribe the cores.
        nn_blas_single_threaded();
        size_t extra = 2 * job.k + 8;
        job.keep = extra < flat->count ? extra : flat->count;
        size_t block = (nq + threads - 1) / threads;
        job.query_block = block < BLAS_QUERY_BLOCK ? block : BLAS_QUERY_BLOCK;
        nn_pool_run(pool, (nq + job.query_block - 1) / job.query_block, blas_task, &job);
    } else {
        // Fewer queries than threads: split each query's rows so every core has work.
        size_t chunks = 1;
        if (nq < threads) {
            chunks = (threads + nq - 1) / nq;
            size_t most = flat->count / SIMD_CHUNK_MIN;
            if (chunks > most) chunks = most ? most : 1;
        }
        job.chunks = chunks;
        job.partial = malloc(nq * chunks * job.k * sizeof(nn_scored));
        if (!job.partial) {
            free(normalized);
            return NN_ERR_NO_MEMORY;
        }
        nn_pool_run(pool, nq * chunks, simd_task, &job);
        simd_merge(&job);
        free(job.partial);
    }
    if (job.failed) status = NN_ERR_NO_MEMORY;
    free(normalized);
    return status;
}

nn_status nn_flat_search(const nn_flat *flat, nn_pool *pool, const float *queries, size_t nq,
                         size_t query_stride, size_t k, uint64_t *ids, float *distances) {
    bool use_blas = nq >= flat->blas_threshold;
    return nn_flat_search_path(flat, pool, queries, nq, query_stride, k, use_blas, ids, distances);
}

// ---------------------------------------------------------------------------------------------
// Calibration: time both paths on a slice of this index's own rows.

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double best_time(const nn_flat *view, nn_pool *pool, size_t nq, bool use_blas,
                        uint64_t *ids, float *distances) {
    double best = INFINITY;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_seconds();
        nn_flat_search_path(view, pool, view->rows, nq, view->dim, 10, use_blas, ids, distances);
        double t = now_seconds() - t0;
        if (t < best) best = t;
    }
    return best;
}

nn_status nn_flat_calibrate(nn_flat *flat, nn_pool *pool) {
    enum { SAMPLE_ROWS = 4096, MAX_BATCH = 64 };
    if (flat->count < MAX_BATCH) return NN_OK;  // too small to tell; the default stands
    nn_flat view = *flat;  // a slice of the same rows: costs scale with rows for both paths alike
    if (view.count > SAMPLE_ROWS) view.count = SAMPLE_ROWS;
    uint64_t *ids = malloc(MAX_BATCH * 10 * sizeof(uint64_t));
    float *distances = malloc(MAX_BATCH * 10 * sizeof(float));
    if (!ids || !distances) {
        free(ids);
        free(distances);
        return NN_ERR_NO_MEMORY;
    }
    size_t threshold = MAX_BATCH;
    for (size_t batch = 1; batch <= MAX_BATCH; batch *= 2) {
        double simd = best_time(&view, pool, batch, false, ids, distances);
        double blas = best_time(&view, pool, batch, true, ids, distances);
        if (blas < simd) {
            threshold = batch;
            break;
        }
    }
    flat->blas_threshold = threshold;
    free(ids);
    free(distances);
    return NN_OK;
}
