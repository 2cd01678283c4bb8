// A bounded top-k for long scans (the flat index), by threshold and cut instead of a heap.
//
// Rows come in increasing id. One nearer than the bound is appended to a buffer; when the
// buffer fills, a quickselect cuts it back to the k best and the bound drops to the k-th
// distance. A batch of rows is appended without a branch per row (each is written, and the
// size grows by whether it passed), where a heap takes a branch per row and a sift per entry:
// the mispredicted branches were most of the flat index's selection at d = 128.
//
// The result is the heap's: the k best by (distance, id). A row as far as the bound has a
// larger id than the k-th kept, so "strictly nearer" keeps ties on the smaller id; a row that
// was turned away, or cut, ranks after the final k-th, because the bound only ever drops. A
// NaN distance (an inner product of huge vectors can overflow both ways) is kept as +Inf, so
// it ranks after every number and the bound is never NaN.
#ifndef NN_TOPK_H
#define NN_TOPK_H

#include "heap.h"

#include <math.h>
#include <string.h>

/// The most rows one nn_topk_push_batch takes; storage is at least k + NN_TOPK_BATCH pairs.
#define NN_TOPK_BATCH 16

typedef struct nn_topk {
    nn_scored *items;  // the caller's storage, `capacity` pairs: at least k + NN_TOPK_BATCH
    size_t size;
    size_t capacity;
    size_t k;
    float bound;       // rows at or beyond it cannot enter; +Inf until the first cut
} nn_topk;

static inline nn_topk nn_topk_over(nn_scored *storage, size_t capacity, size_t k) {
    return (nn_topk){storage, 0, capacity, k, INFINITY};
}

// The order of nn_after, for distances that are not NaN, as one integer: the distance's bits
// made to sort as unsigned (-0 as +0), then the id. One compare without a branch, where
// nn_after takes two.
static inline uint64_t nn_scored_key(nn_scored x) {
    float distance = x.distance + 0.0f;  // -0 + 0 is +0
    uint32_t bits;
    memcpy(&bits, &distance, sizeof bits);
    bits ^= bits >> 31 ? UINT32_MAX : 0x80000000u;
    return (uint64_t)bits << 32 | x.id;
}

static inline float nn_not_nan(float distance) { return distance == distance ? distance : INFINITY; }

static inline void nn_scored_swap(nn_scored *a, nn_scored *b) {
    nn_scored t = *a;
    *a = *b;
    *b = t;
}

// Puts the pair that ranks (k-1)-th of items[0, n) at items[k - 1], the ones before it in
// front and the ones after it behind: quickselect, median-of-three pivots, and a partition that
// moves every pair and advances by the comparison instead of branching on it.
static inline void nn_scored_select(nn_scored *items, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1, target = k - 1;  // the range [lo, hi]
    while (hi > lo) {
        size_t mid = lo + (hi - lo) / 2;  // the median of three goes to hi as the pivot
        if (nn_scored_key(items[lo]) > nn_scored_key(items[hi])) nn_scored_swap(&items[lo], &items[hi]);
        if (nn_scored_key(items[mid]) > nn_scored_key(items[hi])) nn_scored_swap(&items[mid], &items[hi]);
        if (nn_scored_key(items[mid]) > nn_scored_key(items[lo])) nn_scored_swap(&items[mid], &items[lo]);
        nn_scored_swap(&items[lo], &items[hi]);
        uint64_t pivot = nn_scored_key(items[hi]);
        size_t store = lo;  // items[lo, store) rank before the pivot, items[store, i) after it
        for (size_t i = lo; i < hi; i++) {
            nn_scored x = items[i];
            bool before = nn_scored_key(x) < pivot;
            items[i] = items[store];
            items[store] = x;
            store += before;
        }
        nn_scored_swap(&items[store], &items[hi]);
        if (store == target) return;
        if (target < store) hi = store - 1; else lo = store + 1;
    }
}

/// Keeps the k best of the buffer (when more came), the one that ranks last at items[k - 1];
/// the bound becomes its distance.
static inline void nn_topk_cut(nn_topk *t) {
    if (t->size < t->k) return;
    nn_scored_select(t->items, t->size, t->k);
    t->size = t->k;
    t->bound = t->items[t->k - 1].distance;
}

// Between calls the buffer has room for a whole batch.
static inline void nn_topk_keep_room(nn_topk *t) {
    if (t->capacity - t->size < NN_TOPK_BATCH) nn_topk_cut(t);
}

/// Offers row `id` at `distance`; rows must come in increasing id.
static inline void nn_topk_push(nn_topk *t, float distance, uint32_t id) {
    distance = nn_not_nan(distance);
    if (t->size >= t->k && !(distance < t->bound)) return;
    t->items[t->size++] = (nn_scored){distance, id};
    nn_topk_keep_room(t);
}

/// Offers rows id0, id0 + 1, ... at distances d[0, n), n <= NN_TOPK_BATCH, once k have come.
static inline void nn_topk_push_batch(nn_topk *t, const float *d, uint32_t id0, size_t n) {
    size_t size = t->size;
    float bound = t->bound;
    for (size_t i = 0; i < n; i++) {  // a NaN fails the test, as +Inf would
        t->items[size] = (nn_scored){d[i], id0 + (uint32_t)i};
        size += d[i] < bound;
    }
    t->size = size;
    nn_topk_keep_room(t);
}

/// Cuts to the k best and returns how many are kept (fewer than k if fewer came). Unsorted,
/// but when k came, items[k - 1] is the one that ranks last.
static inline size_t nn_topk_finish(nn_topk *t) {
    nn_topk_cut(t);
    return t->size;
}

#endif
