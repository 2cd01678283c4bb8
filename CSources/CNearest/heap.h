// Binary heaps of (distance, id) pairs, ordered by distance and then by id, so that equal
// distances resolve to the smaller id and every result is deterministic.
//
// The max-heap keeps the worst of a bounded top-k on top (flat search, HNSW result set W);
// the min-heap keeps the closest candidate on top (HNSW candidate set C). Storage is the
// caller's: a heap never allocates.
#ifndef NN_HEAP_H
#define NN_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct nn_scored {
    float distance;
    uint32_t id;
} nn_scored;

typedef struct nn_heap {
    nn_scored *items;
    size_t size;
    size_t capacity;
} nn_heap;

/// True when `a` ranks after `b`: farther, or as far with a larger id.
static inline bool nn_after(nn_scored a, nn_scored b) {
    return a.distance > b.distance || (a.distance == b.distance && a.id > b.id);
}

static inline nn_heap nn_heap_over(nn_scored *storage, size_t capacity) {
    return (nn_heap){storage, 0, capacity};
}

// Sift helpers take `max` to serve both orders: max-heap when true, min-heap when false.
static inline bool nn_heap_above(nn_scored a, nn_scored b, bool max) {
    return max ? nn_after(a, b) : nn_after(b, a);
}

static inline void nn_heap_sift_up(nn_heap *h, size_t i, bool max) {
    nn_scored x = h->items[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!nn_heap_above(x, h->items[parent], max)) break;
        h->items[i] = h->items[parent];
        i = parent;
    }
    h->items[i] = x;
}

static inline void nn_heap_sift_down(nn_heap *h, size_t i, bool max) {
    nn_scored x = h->items[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->size) break;
        if (child + 1 < h->size && nn_heap_above(h->items[child + 1], h->items[child], max)) child++;
        if (!nn_heap_above(h->items[child], x, max)) break;
        h->items[i] = h->items[child];
        i = child;
    }
    h->items[i] = x;
}

/// Pushes onto a heap with room (size < capacity).
static inline void nn_heap_push(nn_heap *h, nn_scored x, bool max) {
    h->items[h->size] = x;
    nn_heap_sift_up(h, h->size++, max);
}

static inline nn_scored nn_heap_pop(nn_heap *h, bool max) {
    nn_scored top = h->items[0];
    h->items[0] = h->items[--h->size];
    if (h->size) nn_heap_sift_down(h, 0, max);
    return top;
}

/// Bounded top-k on a max-heap: keeps `x` if there is room or it ranks before the worst kept.
static inline void nn_topk_offer(nn_heap *h, nn_scored x) {
    if (h->size < h->capacity) {
        nn_heap_push(h, x, true);
    } else if (h->capacity && nn_after(h->items[0], x)) {
        h->items[0] = x;
        nn_heap_sift_down(h, 0, true);
    }
}

static int nn_scored_compare(const void *pa, const void *pb) {
    nn_scored a = *(const nn_scored *)pa, b = *(const nn_scored *)pb;
    return nn_after(a, b) ? 1 : nn_after(b, a) ? -1 : 0;
}

/// Sorts `n` pairs nearest first (the heap property is lost).
static inline void nn_scored_sort(nn_scored *items, size_t n) {
    qsort(items, n, sizeof *items, nn_scored_compare);
}

/// Sorts a max-heap's items nearest first in place (heapsort's second half: no comparator
/// calls through a pointer, no allocation).
static inline void nn_heap_sort(nn_heap *h) {
    size_t n = h->size;
    while (h->size > 1) {
        nn_scored top = h->items[0];
        h->items[0] = h->items[--h->size];
        nn_heap_sift_down(h, 0, true);
        h->items[h->size] = top;
    }
    h->size = n;
}

/// Insertion sort nearest first, for the few dozen pairs of a link list.
static inline void nn_scored_sort_small(nn_scored *items, size_t n) {
    for (size_t i = 1; i < n; i++) {
        nn_scored x = items[i];
        size_t j = i;
        for (; j > 0 && nn_after(items[j - 1], x); j--) items[j] = items[j - 1];
        items[j] = x;
    }
}

#endif
