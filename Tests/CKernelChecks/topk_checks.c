// Checks of the flat index's top-k selection (CSources/CNearest/topk.h, internal to the core):
// streams with many ties, signed zeros, infinities and NaN, against a sort of all of them.
#include "CKernelChecks.h"
#include "check_random.h"
#include "../../CSources/CNearest/topk.h"

#include <math.h>
#include <stdio.h>

// A distance from a small set when `ties`, so that many are equal; now and then -0, +/-Inf.
static float random_distance(uint64_t *state, bool ties) {
    uint64_t r = next_random(state);
    switch (r % 64) {
    case 0: return -0.0f;
    case 1: return INFINITY;
    case 2: return -INFINITY;
    default: break;
    }
    float x = (float)((r >> 11) % (ties ? 7 : 1000000));
    return (r >> 10) & 1 ? x : -x;
}

// The reference order: nn_after (which ties -0 with +0), NaN as +Inf.
static int reference_compare(const void *pa, const void *pb) {
    nn_scored a = *(const nn_scored *)pa, b = *(const nn_scored *)pb;
    if (isnan(a.distance)) a.distance = INFINITY;
    if (isnan(b.distance)) b.distance = INFINITY;
    return nn_after(a, b) ? 1 : nn_after(b, a) ? -1 : 0;
}

static int fail(char *message, size_t size, const char *what, size_t round, size_t n, size_t k) {
    snprintf(message, size, "%s (round %zu, %zu rows, k = %zu)", what, round, n, k);
    return 1;
}

int nn_check_topk(char *message, size_t message_size) {
    enum { MOST = 600 };
    static nn_scored stream[MOST], sorted[MOST], storage[MOST + NN_TOPK_BATCH + 64];
    uint64_t state = 0x9E3779B97F4A7C15ull;
    int failures = 0;
    for (size_t round = 0; round < 20000; round++) {
        size_t n = 1 + next_random(&state) % MOST;
        size_t k = 1 + next_random(&state) % ((n < 50 ? n : 50) + (round % 7 == 0 ? 5 : 0));  // now and then k > n
        bool ties = round % 2, nans = round % 5 == 0;
        for (size_t i = 0; i < n; i++) {
            float d = random_distance(&state, ties);
            if (nans && next_random(&state) % 16 == 0) d = next_random(&state) % 2 ? NAN : -NAN;  // both signs: x86 makes negative ones
            stream[i] = sorted[i] = (nn_scored){d, (uint32_t)i};
        }
        qsort(sorted, n, sizeof *sorted, reference_compare);

        // Quickselect alone (no NaN: the top-k never holds one): the (k-1)-th at k - 1, the
        // ones that rank before it in front.
        if (k <= n) {
            for (size_t i = 0; i < n; i++) storage[i] = (nn_scored){nn_not_nan(stream[i].distance), stream[i].id};
            nn_scored_select(storage, n, k);
            if (storage[k - 1].id != sorted[k - 1].id && !failures++)
                fail(message, message_size, "nn_scored_select put the wrong pair at k - 1", round, n, k);
            for (size_t i = 0; i < k; i++) {
                if (nn_after(storage[i], storage[k - 1]) && !failures++)
                    fail(message, message_size, "nn_scored_select left a later pair in front", round, n, k);
            }
        }

        // The top-k fed as flat.c feeds it: single pushes until k, then batches of up to 16.
        size_t capacity = k + NN_TOPK_BATCH + next_random(&state) % 64;
        nn_topk top = nn_topk_over(storage, capacity, k);
        size_t i = 0;
        for (; i < n && top.size < top.k; i++) nn_topk_push(&top, stream[i].distance, stream[i].id);
        while (i < n) {
            size_t batch = 1 + next_random(&state) % NN_TOPK_BATCH;
            if (batch > n - i) batch = n - i;
            float d[NN_TOPK_BATCH];
            for (size_t j = 0; j < batch; j++) d[j] = stream[i + j].distance;
            nn_topk_push_batch(&top, d, (uint32_t)i, batch);
            if (top.size > top.capacity - NN_TOPK_BATCH && !failures++)
                fail(message, message_size, "the buffer lost its room for a batch", round, n, k);
            i += batch;
        }
        size_t kept = nn_topk_finish(&top);
        if (kept != (k < n ? k : n)) {
            if (!failures++) fail(message, message_size, "nn_topk_finish kept the wrong count", round, n, k);
            continue;
        }
        if (kept == k && top.items[k - 1].id != sorted[k - 1].id && !failures++)
            fail(message, message_size, "items[k - 1] is not the k-th", round, n, k);
        qsort(top.items, kept, sizeof *top.items, reference_compare);
        for (size_t j = 0; j < kept; j++) {
            if (top.items[j].id != sorted[j].id) {
                if (!failures++) fail(message, message_size, "the top-k differs from the sorted stream", round, n, k);
                break;
            }
        }
    }
    return failures;
}
