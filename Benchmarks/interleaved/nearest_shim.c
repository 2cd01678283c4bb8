// swift-nearest's C core for Python's ctypes (interleaved.py, interleaved_flat.py): build a graph
// on a pool and run one thread's query loop the way `HNSWIndex.searchSequentially` does
// (nn_hnsw_search once per query); or fill a flat index, calibrate it as `FlatIndex` does, and
// search batches on a pool. Nothing here is part of the product.
#include "nn_flat.h"
#include "nn_hnsw.h"
#include "nn_pool.h"

#include <stdint.h>
#include <stdlib.h>

void *shim_build(const float *rows, size_t n, size_t dim, int metric, size_t m, size_t ef_construction,
                 size_t threads) {
    nn_hnsw_params params;
    nn_hnsw_params_default(&params, dim, (nn_metric)metric);
    params.m = m;
    params.ef_construction = ef_construction;
    nn_hnsw *index = NULL;
    nn_pool *pool = NULL;
    uint64_t *ids = malloc(n * sizeof(uint64_t));
    if (!ids || nn_hnsw_create(&params, &index) != NN_OK || nn_pool_create(threads, &pool) != NN_OK) {
        free(ids);
        nn_hnsw_destroy(index);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) ids[i] = i;
    nn_status status = nn_hnsw_add(index, pool, rows, n, dim, ids);
    nn_pool_destroy(pool);
    free(ids);
    if (status != NN_OK) {
        nn_hnsw_destroy(index);
        return NULL;
    }
    return index;
}

// Searches nq queries one at a time; writes k labels per query; returns distance computations.
uint64_t shim_search(void *index, const float *queries, size_t nq, size_t dim, size_t k, size_t ef,
                     int64_t *labels) {
    uint64_t ids[k];
    float distances[k];
    uint64_t work = 0;
    for (size_t q = 0; q < nq; q++) {
        nn_hnsw_stats stats;
        nn_hnsw_search(index, queries + q * dim, k, ef, ids, distances, &stats);
        work += stats.distances;
        for (size_t i = 0; i < k; i++) labels[q * k + i] = ids[i] == NN_NO_ID ? -1 : (int64_t)ids[i];
    }
    return work;
}

void shim_free(void *index) { nn_hnsw_destroy(index); }

// The flat index and the pool its searches run on.
typedef struct shim_flat {
    nn_flat *flat;
    nn_pool *pool;
} shim_flat;

void *shim_flat_build(const float *rows, size_t n, size_t dim, int metric, size_t threads) {
    shim_flat *s = calloc(1, sizeof *s);
    if (!s || nn_flat_create(dim, (nn_metric)metric, NN_ISA_AUTO, &s->flat) != NN_OK ||
        nn_pool_create(threads, &s->pool) != NN_OK || nn_flat_add(s->flat, rows, n, dim) != NN_OK ||
        nn_flat_calibrate(s->flat, s->pool) != NN_OK) {
        if (s) {
            nn_flat_destroy(s->flat);
            nn_pool_destroy(s->pool);
        }
        free(s);
        return NULL;
    }
    return s;
}

// One call for nq queries (the automatic path); k labels per query. Returns 0 on success.
int shim_flat_search(void *handle, const float *queries, size_t nq, size_t dim, size_t k, int64_t *labels,
                     float *distances) {
    shim_flat *s = handle;
    uint64_t *ids = (uint64_t *)labels;  // same size; converted in place below
    if (nn_flat_search(s->flat, s->pool, queries, nq, dim, k, ids, distances) != NN_OK) return 1;
    for (size_t i = 0; i < nq * k; i++) labels[i] = ids[i] == NN_NO_ID ? -1 : (int64_t)ids[i];
    return 0;
}

void shim_flat_free(void *handle) {
    shim_flat *s = handle;
    if (!s) return;
    nn_flat_destroy(s->flat);
    nn_pool_destroy(s->pool);
    free(s);
}
