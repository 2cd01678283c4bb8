// The exact flat index (see nn_flat.h for the two search paths and why they agree).
#include "nn_flat.h"

#include "blas.h"
#include "topk.h"
#include "memory.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    SIMD_BLOCK = 1024,        // distances computed per kernel call on the SIMD path
    SIMD_CHUNK_MIN = 4096,    // fewest rows worth a task of their own when one query is split
    // 1,024 x 1,024: single-threaded OpenBLAS (Haswell kernels) ran these blocks 15-20% faster
    // than 256 x 2,048 at d = 128 and 784, and 1.5x faster than 128 queries; 4 MiB of scores.
    BLAS_QUERY_BLOCK = 1024,  // queries per sgemm
    BLAS_ROW_BLOCK = 1024,    // rows per sgemm
    MERGE_BLOCK = 16,         // queries per merge task when the rows were split
    DEFAULT_THRESHOLD = 16,   // until calibrated
};

typedef struct scratch_cache scratch_cache;

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
    scratch_cache *scratch; // the sgemm path's buffers, kept between searches
};

static scratch_cache *scratch_cache_create(void);
static void scratch_cache_destroy(scratch_cache *cache);

nn_status nn_flat_create(size_t dim, nn_metric metric, nn_isa isa, nn_flat **out) {
    if (dim == 0 || (unsigned)metric >= NN_METRIC_COUNT) return NN_ERR_ARGUMENT;
    nn_flat *flat = calloc(1, sizeof *flat);
    if (!flat) return NN_ERR_NO_MEMORY;
    nn_status status = nn_kernels_init(&flat->kernels, isa);
    if (status == NN_OK && !(flat->scratch = scratch_cache_create())) status = NN_ERR_NO_MEMORY;
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
    scratch_cache_destroy(flat->scratch);
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
    // Not realloc: a fresh huge-page block (memory.h) keeps long scans off the TLB.
    float *rows = nn_alloc_large(capacity * flat->dim * sizeof(float));
    if (!rows) return NN_ERR_NO_MEMORY;
    if (flat->count) memcpy(rows, flat->rows, flat->count * flat->dim * sizeof(float));
    free(flat->rows);
    flat->rows = rows;
    float *norms = realloc(flat->norms, capacity * sizeof(float));
    if (!norms) return NN_ERR_NO_MEMORY;  // rows grew, count did not: nothing is lost
    flat->norms = norms;
    flat->capacity = capacity;
    return NN_OK;
}

nn_status nn_flat_reserve(nn_flat *flat, size_t rows) {
    nn_status status = reserve(flat, rows);
    if (status != NN_OK) return status;
    size_t spare = flat->capacity - flat->count;
    memset(flat->rows + flat->count * flat->dim, 0, spare * flat->dim * sizeof(float));
    memset(flat->norms + flat->count, 0, spare * sizeof(float));
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
    size_t slots;          // pairs of storage per top-k (topk_slots of k, or of keep)
    size_t chunks;         // SIMD path: row ranges per query
    size_t query_block;    // sgemm path: queries per task
    size_t ranges;         // sgemm path: row ranges per query block
    nn_scored *partial;    // SIMD path: nq * chunks * slots pairs; sgemm path: nq * ranges * keep
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

// Offers the distances of rows [r0, r0 + n) to `top`. Once it holds k rows, most rows are not
// nearer than its bound: that test runs LANES rows at a time (a vector compare), and only a
// group with a row that passes is offered.
enum { LANES = NN_TOPK_BATCH };

static inline void offer_rows(nn_topk *top, const float *d, size_t r0, size_t n) {
    size_t j = 0;
    for (; j < n && top->size < top->k; j++) nn_topk_push(top, d[j], (uint32_t)(r0 + j));
    for (; j + LANES <= n; j += LANES) {
        float bound = top->bound;
        int any = 0;
        for (size_t l = 0; l < LANES; l++) any |= d[j + l] < bound;
        if (any) nn_topk_push_batch(top, d + j, (uint32_t)(r0 + j), LANES);
    }
    if (j < n) nn_topk_push_batch(top, d + j, (uint32_t)(r0 + j), n - j);
}

// Storage for a top-k of k (topk.h): the k kept and k + 32 more, so that a cut comes after
// about k + 16 appends. Larger buffers cut less often but lower the bound later: at d = 128,
// k + 128 and k + 512 selected more slowly than this.
static size_t topk_slots(size_t k) { return 2 * k + 32; }

// The exact scan of rows [lo, hi) into a top-k, with the SIMD kernel, in order.
static void scan_range(const nn_flat *flat, const float *query, size_t lo, size_t hi, nn_topk *top) {
    float scores[SIMD_BLOCK];
    const float *rows[SIMD_BLOCK];
    nn_distance_many_fn many = flat->kernels.distance_many[flat->metric];
    for (size_t r0 = lo; r0 < hi; r0 += SIMD_BLOCK) {
        size_t n = hi - r0 < SIMD_BLOCK ? hi - r0 : SIMD_BLOCK;
        for (size_t j = 0; j < n; j++) rows[j] = flat->rows + (r0 + j) * flat->dim;
        many(query, rows, n, flat->dim, scores);
        offer_rows(top, scores, r0, n);
    }
}

// Rows far apart in memory, streamed side by side: one core reads memory faster with several
// sequential streams in flight than with one, as more of its prefetchers work at once. One
// query, one thread, in one process: MiniLM 9.6-11.5 GB/s in order, 15.6-18.3 with 8 streams;
// Fashion 11.1-13.1 and 14.3-21.2; 4 streams gained about half as much, 12 and 16 no more
// than 8. Rows that stay in cache gain nothing: SIFT (5 MB) scanned 3% slower in streams.
enum {
    STREAMS = 8,                   // row ranges scanned side by side
    STREAM_SLOTS = 4096,           // top-k storage for all of them, on the stack (32 KiB): k <= 240
    STREAM_BYTES_MIN = 16 << 20,   // smaller scans run in order
};

// The exact scan of rows [lo, hi) into an empty top-k: as STREAMS equal ranges side by side
// (each kernel call takes rows from all of them in turn), each range into its own top-k; the k
// best of all their candidates (by distance, then id) then go to `top`. Small scans and large
// k run in order.
static void scan_rows(const nn_flat *flat, const float *query, size_t lo, size_t hi, nn_topk *top) {
    size_t slots = topk_slots(top->k), per = (hi - lo) / STREAMS;
    if ((hi - lo) * flat->dim * sizeof(float) < STREAM_BYTES_MIN || STREAMS * slots > STREAM_SLOTS) {
        scan_range(flat, query, lo, hi, top);
        return;
    }
    nn_scored storage[STREAM_SLOTS];
    nn_topk parts[STREAMS];
    for (size_t m = 0; m < STREAMS; m++) parts[m] = nn_topk_over(storage + m * slots, slots, top->k);
    enum { GROUP = SIMD_BLOCK / STREAMS };  // rows per range per kernel call
    float scores[SIMD_BLOCK], mine[GROUP];
    const float *rows[SIMD_BLOCK];
    nn_distance_many_fn many = flat->kernels.distance_many[flat->metric];
    for (size_t i0 = 0; i0 < per; i0 += GROUP) {
        size_t n = per - i0 < GROUP ? per - i0 : GROUP;
        for (size_t i = 0; i < n; i++)
            for (size_t m = 0; m < STREAMS; m++) rows[i * STREAMS + m] = flat->rows + (lo + m * per + i0 + i) * flat->dim;
        many(query, rows, n * STREAMS, flat->dim, scores);
        for (size_t m = 0; m < STREAMS; m++) {
            for (size_t i = 0; i < n; i++) mine[i] = scores[i * STREAMS + m];
            offer_rows(&parts[m], mine, lo + m * per + i0, n);
        }
    }
    scan_range(flat, query, lo + STREAMS * per, hi, &parts[STREAMS - 1]);  // the last few rows
    size_t all = 0;  // every range's candidates, gathered at the front of `storage`
    for (size_t m = 0; m < STREAMS; m++) {
        size_t kept = nn_topk_finish(&parts[m]);
        memmove(storage + all, parts[m].items, kept * sizeof *storage);
        all += kept;
    }
    if (all > top->k) nn_scored_select(storage, all, top->k);
    for (size_t c = 0; c < all && c < top->k; c++) nn_topk_push(top, storage[c].distance, storage[c].id);
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
    nn_topk top = nn_topk_over(job->partial + task * job->slots, job->slots, job->k);
    scan_rows(flat, job->queries + q * job->ldq, lo, hi, &top);
    // Unfilled slots (a range shorter than k) stay marked with +Inf and are skipped at merge.
    for (size_t i = nn_topk_finish(&top); i < job->k; i++) top.items[i] = (nn_scored){INFINITY, UINT32_MAX};
}

static void simd_merge(search_job *job) {
    size_t k = job->k;
    for (size_t q = 0; q < job->nq; q++) {
        nn_scored *all = job->partial + q * job->chunks * job->slots;  // query q's chunks, in a row
        for (size_t c = 1; c < job->chunks; c++) memmove(all + c * k, all + c * job->slots, k * sizeof *all);
        nn_scored_sort(all, job->chunks * k);
        write_results(job, q, all, k);
    }
}

// ---------------------------------------------------------------------------------------------
// Blocked sgemm path. A task multiplies a block of queries by a range of rows, one row block
// at a time, and keeps each query's best `keep` approximate distances in a top-k (topk.h).
// With fewer query blocks than threads, the rows are split instead, so no worker packs rows
// another worker also packs; each range keeps its own top-ks and `blas_merge_task` merges them
// per query.

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

// Turns one query's dot products with rows [r0, r0 + n) into distances, in place (a vector
// loop: the metric is a constant here), and offers them.
static inline __attribute__((always_inline)) void
select_row_block(nn_metric metric, float *scores, const float *row_norms, float query_norm,
                 size_t r0, size_t n, nn_topk *top) {
    for (size_t j = 0; j < n; j++) scores[j] = blas_distance(metric, scores[j], row_norms[j], query_norm);
    offer_rows(top, scores, r0, n);
}

static inline __attribute__((always_inline)) void
select_block_as(nn_metric metric, float *scores, size_t nq, const float *row_norms,
                const float *query_norms, size_t r0, size_t nr, nn_topk *tops) {
    for (size_t i = 0; i < nq; i++)
        select_row_block(metric, scores + i * nr, row_norms, query_norms[i], r0, nr, &tops[i]);
}

// The selection after one sgemm: nq x nr dot products, row-major, into nq top-ks. The switch
// is outside the loops, each case an inlined copy for its metric.
static void select_block(nn_metric metric, float *scores, size_t nq, const float *row_norms,
                         const float *query_norms, size_t r0, size_t nr, nn_topk *tops) {
    switch (metric) {
    case NN_METRIC_L2: select_block_as(NN_METRIC_L2, scores, nq, row_norms, query_norms, r0, nr, tops); break;
    case NN_METRIC_IP: select_block_as(NN_METRIC_IP, scores, nq, row_norms, query_norms, r0, nr, tops); break;
    case NN_METRIC_COSINE: select_block_as(NN_METRIC_COSINE, scores, nq, row_norms, query_norms, r0, nr, tops); break;
    }
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

static float query_norm(const nn_flat *flat, const float *query) {
    return -flat->kernels.distance[NN_METRIC_IP](query, query, flat->dim);
}

// Re-ranks one query's `n` kept candidates with the exact kernel and writes its results: the
// expansion loses digits to cancellation, and this makes both paths report the same distances.
// When rows were left out, `cutoff` is an approximate distance none of them ranks before; if
// such a row could still beat the k-th kept one within the expansion's error bound, the
// query is scanned exactly instead, into `items`: room for `capacity` pairs, at least
// k + NN_TOPK_BATCH when rows were left out.
static void finish_query(const search_job *job, size_t q, nn_scored *items, size_t n, size_t capacity,
                         bool some_left_out, float cutoff) {
    const nn_flat *flat = job->flat;
    const float *query = job->queries + q * job->ldq;
    for (size_t c = 0; c < n; c++)
        items[c].distance = nn_not_nan(  // as the SIMD path's top-k keeps it, so the paths agree
            flat->kernels.distance[flat->metric](query, flat->rows + (size_t)items[c].id * flat->dim, flat->dim));
    nn_scored_sort(items, n);
    if (some_left_out) {
        float kth = items[job->k - 1].distance;
        float error = expansion_error(flat, query_norm(flat, query));
        if (!(cutoff - 2.0f * error > kth)) {  // also taken when the bound is NaN or infinite
            nn_topk top = nn_topk_over(items, capacity, job->k);
            scan_rows(flat, query, 0, flat->count, &top);
            n = nn_topk_finish(&top);
            nn_scored_sort(items, n);
        }
    }
    write_results(job, q, items, n);
}

// Per-task scratch, reused across searches (a fresh 4 MiB block per task cost page faults).
// Kept on a locked free list rather than by worker index: searches may run concurrently, and
// under OpenMP two of them share worker numbers.
typedef struct scratch {
    struct scratch *next;
    size_t bytes;
    _Alignas(64) unsigned char data[];
} scratch;

struct scratch_cache {
    pthread_mutex_t lock;
    scratch *free;
};

static scratch *scratch_take(scratch_cache *cache, size_t bytes) {
    pthread_mutex_lock(&cache->lock);
    scratch *mem = cache->free;
    if (mem) cache->free = mem->next;
    pthread_mutex_unlock(&cache->lock);
    if (mem && mem->bytes >= bytes) return mem;
    free(mem);
    mem = malloc(sizeof *mem + bytes);
    if (mem) mem->bytes = bytes;
    return mem;
}

static void scratch_give(scratch_cache *cache, scratch *mem) {
    pthread_mutex_lock(&cache->lock);
    mem->next = cache->free;
    cache->free = mem;
    pthread_mutex_unlock(&cache->lock);
}

static scratch_cache *scratch_cache_create(void) {
    scratch_cache *cache = calloc(1, sizeof *cache);
    if (cache) pthread_mutex_init(&cache->lock, NULL);
    return cache;
}

static void scratch_cache_destroy(scratch_cache *cache) {
    if (!cache) return;
    while (cache->free) {
        scratch *next = cache->free->next;
        free(cache->free);
        cache->free = next;
    }
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

static void blas_task(void *raw, size_t task, size_t worker) {
    (void)worker;
    search_job *job = raw;
    const nn_flat *flat = job->flat;
    size_t dim = flat->dim, keep = job->keep, ranges = job->ranges;
    size_t block = task / ranges, range = task % ranges;
    size_t q0 = block * job->query_block;
    size_t nq = job->nq - q0 < job->query_block ? job->nq - q0 : job->query_block;
    size_t per = (flat->count + ranges - 1) / ranges;
    size_t lo = range * per < flat->count ? range * per : flat->count;
    size_t hi = lo + per < flat->count ? lo + per : flat->count;

    // Scratch: the score block, the top-ks and their storage, the query norms.
    size_t row_block = hi - lo < BLAS_ROW_BLOCK ? hi - lo : BLAS_ROW_BLOCK;
    size_t score_bytes = (nq * row_block * sizeof(float) + 63) / 64 * 64;  // the top-ks follow
    size_t top_bytes = nq * sizeof(nn_topk);
    size_t kept_bytes = nq * job->slots * sizeof(nn_scored);
    size_t norm_bytes = nq * sizeof(float);
    scratch *mem = scratch_take(flat->scratch, score_bytes + top_bytes + kept_bytes + norm_bytes);
    if (!mem) {
        job->failed = true;
        return;
    }
    // score_bytes and top_bytes are multiples of 8, the alignment nn_topk and nn_scored need.
    float *scores = (float *)mem->data;
    nn_topk *tops = (nn_topk *)(mem->data + score_bytes);
    nn_scored *kept = (nn_scored *)(mem->data + score_bytes + top_bytes);
    float *query_norms = (float *)(mem->data + score_bytes + top_bytes + kept_bytes);

    const float *queries = job->queries + q0 * job->ldq;
    for (size_t i = 0; i < nq; i++) {
        tops[i] = nn_topk_over(kept + i * job->slots, job->slots, keep);
        query_norms[i] = query_norm(flat, queries + i * job->ldq);
    }
    for (size_t r0 = lo; r0 < hi; r0 += BLAS_ROW_BLOCK) {
        size_t nr = hi - r0 < BLAS_ROW_BLOCK ? hi - r0 : BLAS_ROW_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nr, (int)dim, 1.0f,
                    queries, (int)job->ldq, flat->rows + r0 * dim, (int)dim, 0.0f, scores, (int)nr);
        select_block(flat->metric, scores, nq, flat->norms + r0, query_norms, r0, nr, tops);
    }
    for (size_t i = 0; i < nq; i++) {
        nn_topk *top = &tops[i];
        size_t n = nn_topk_finish(top);  // the k-th kept, if `keep` came, is items[keep - 1]
        if (ranges == 1) {
            bool some_left_out = n == keep && keep < flat->count;
            float cutoff = some_left_out ? top->items[keep - 1].distance : INFINITY;
            finish_query(job, q0 + i, top->items, n, job->slots, some_left_out, cutoff);
        } else {
            // Query q's candidates from every range lie side by side (q * ranges + range), for
            // the merge; a range shorter than `keep` leaves slots the merge skips.
            nn_scored *merged = job->partial + ((q0 + i) * ranges + range) * keep;
            memcpy(merged, top->items, n * sizeof *merged);
            for (size_t c = n; c < keep; c++) merged[c] = (nn_scored){INFINITY, UINT32_MAX};
        }
    }
    scratch_give(flat->scratch, mem);
}

// With several row ranges: each query's best `keep` of all its ranges' candidates, then the
// re-rank. A row a range left out ranks after that range's worst kept, which ranks no earlier
// than the merged `keep`-th, so that one bounds every row left out.
static void blas_merge_task(void *raw, size_t task, size_t worker) {
    (void)worker;
    search_job *job = raw;
    size_t keep = job->keep;
    size_t q1 = (task + 1) * MERGE_BLOCK < job->nq ? (task + 1) * MERGE_BLOCK : job->nq;
    for (size_t q = task * MERGE_BLOCK; q < q1; q++) {
        nn_scored *all = job->partial + q * job->ranges * keep;
        nn_scored_sort(all, job->ranges * keep);
        size_t n = 0;
        while (n < keep && all[n].id != UINT32_MAX) n++;
        bool some_left_out = n == keep && keep < job->flat->count;
        finish_query(job, q, all, n, job->ranges * keep, some_left_out,
                     some_left_out ? all[keep - 1].distance : INFINITY);
    }
}

// Plans the sgemm path's tasks and runs them. Enough query blocks for every thread: one task
// per block, each block against all rows, the blocks evened out so the threads finish together.
// Fewer (small batches): every block is split into row ranges, one per thread, so the threads
// share the work without each packing every row; a second pass merges the ranges per query.
static nn_status blas_search(search_job *job, nn_pool *pool, size_t threads) {
    const nn_flat *flat = job->flat;
    // BLAS runs single-threaded inside our tasks: its own threads would oversubscribe the cores.
    nn_blas_single_threaded();
    size_t extra = 2 * job->k + 8;
    job->keep = extra < flat->count ? extra : flat->count;
    job->slots = topk_slots(job->keep);
    size_t blocks = (job->nq + BLAS_QUERY_BLOCK - 1) / BLAS_QUERY_BLOCK;
    job->ranges = 1;
    if (blocks >= threads) {
        blocks = (blocks + threads - 1) / threads * threads;
    } else {
        size_t most = flat->count / BLAS_ROW_BLOCK;  // ranges of at least one row block
        job->ranges = threads < most ? threads : most ? most : 1;
    }
    job->query_block = (job->nq + blocks - 1) / blocks;
    blocks = (job->nq + job->query_block - 1) / job->query_block;
    if (job->ranges > 1) {
        job->partial = malloc(job->nq * job->ranges * job->keep * sizeof(nn_scored));
        if (!job->partial) return NN_ERR_NO_MEMORY;
    }
    nn_pool_run(pool, blocks * job->ranges, blas_task, job);
    if (job->ranges > 1 && !job->failed)
        nn_pool_run(pool, (job->nq + MERGE_BLOCK - 1) / MERGE_BLOCK, blas_merge_task, job);
    free(job->partial);
    job->partial = NULL;
    return NN_OK;
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
        status = blas_search(&job, pool, threads);
    } else {
        // Fewer queries than threads: split each query's rows so every core has work.
        size_t chunks = 1;
        if (nq < threads) {
            chunks = (threads + nq - 1) / nq;
            size_t most = flat->count / SIMD_CHUNK_MIN;
            if (chunks > most) chunks = most ? most : 1;
        }
        job.chunks = chunks;
        job.slots = topk_slots(job.k);
        job.partial = malloc(nq * chunks * job.slots * sizeof(nn_scored));
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
    // The slice must outgrow the per-core caches (2 MiB L2 on the benchmark machine): in cache
    // the SIMD loop is compute-bound and wins up to larger batches than it does on a real index,
    // where it streams rows from memory (4,096 rows of SIFT on 2 threads put the switch at 32,
    // where sgemm already ran 1.5x faster at 16).
    // Up to 32 MiB, so a calibration costs at most a few tenths of a second.
    enum { SAMPLE_BYTES = 32 << 20, MIN_SAMPLE_ROWS = 4096, MAX_BATCH = 64 };
    if (flat->count < MAX_BATCH) return NN_OK;  // too small to tell: the threshold stays
    nn_flat view = *flat;  // a slice of the same rows: costs scale with rows for both paths alike
    size_t sample = SAMPLE_BYTES / (flat->dim * sizeof(float));
    if (sample < MIN_SAMPLE_ROWS) sample = MIN_SAMPLE_ROWS;
    if (view.count > sample) view.count = sample;
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
