#include "CKernelChecks.h"
#include "check_random.h"
#include "nn_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static float random_float(uint64_t *state) {
    return (float)((double)(next_random(state) >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

// The reference: double precision, and the scale of the terms for a relative tolerance.
static double reference(nn_metric metric, const float *a, const float *b, size_t dim, double *scale) {
    double l2 = 0, dot = 0, magnitude = 0;
    for (size_t i = 0; i < dim; i++) {
        double d = (double)a[i] - b[i];
        l2 += d * d;
        dot += (double)a[i] * b[i];
        magnitude += fabs((double)a[i] * b[i]);
    }
    switch (metric) {
    case NN_METRIC_L2: *scale = l2; return l2;
    case NN_METRIC_IP: *scale = magnitude; return -dot;
    case NN_METRIC_COSINE: *scale = 1.0 + magnitude; return 1.0 - dot;
    }
    return 0;
}

static bool close_enough(float got, double want, double scale) {
    return fabs((double)got - want) <= 1e-5 * scale + 1e-6;
}

// Eleven rows: two groups of four for the four-row kernels (the second prefetched by the first)
// and a tail of three done one by one.
#define ROWS 11

int nn_check_kernels(nn_isa isa, char *message, size_t message_size) {
    static const size_t extra_dims[] = {384, 768, 784, 1024, 1536};
    nn_kernels table;
    if (nn_kernels_init(&table, isa) != NN_OK) {
        snprintf(message, message_size, "%s is not supported here", nn_isa_name(isa));
        return -1;
    }
    // A region whose last page is unreadable: a vector placed to end at the guard catches any
    // kernel that reads past its tail.
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = ((1536 * (ROWS + 2) + 64) * sizeof(float) + page - 1) / page * page;
    char *region = mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) {
        snprintf(message, message_size, "mmap failed");
        return 1;
    }
    mprotect(region + span, page, PROT_NONE);
    float *guard_end = (float *)(region + span);

    uint64_t seed = 0x9E3779B97F4A7C15ull;
    int failures = 0;
    message[0] = 0;
    float query_storage[1536 + 8];
    for (size_t n = 0; n < 300 + sizeof extra_dims / sizeof extra_dims[0]; n++) {
        size_t dim = n < 300 ? n + 1 : extra_dims[n - 300];
        for (size_t offset = 0; offset < 4; offset++) {
            // Query at an unaligned start; rows `dim + offset` floats apart, the last one ending
            // exactly at the guard page.
            float *query = query_storage + offset;
            size_t stride = dim + offset;
            float *rows = guard_end - (ROWS - 1) * stride - dim;
            for (size_t i = 0; i < dim; i++) query[i] = random_float(&seed);
            for (size_t r = 0; r < ROWS; r++)
                for (size_t i = 0; i < dim; i++) rows[r * stride + i] = random_float(&seed);
            for (int m = 0; m < NN_METRIC_COUNT; m++) {
                float many[ROWS], picked[ROWS];
                uint32_t order[ROWS] = {4, 0, 3, 3, 1, 10, 7, 2, 9, 9, 5};
                const float *in_order[ROWS], *shuffled[ROWS];
                for (size_t r = 0; r < ROWS; r++) {
                    in_order[r] = rows + r * stride;
                    shuffled[r] = rows + order[r] * stride;
                }
                table.distance_many[m](query, in_order, ROWS, dim, many);
                table.distance_many[m](query, shuffled, ROWS, dim, picked);
                for (size_t r = 0; r < ROWS; r++) {
                    double scale, want = reference((nn_metric)m, query, rows + r * stride, dim, &scale);
                    float one = table.distance[m](query, rows + r * stride, dim);
                    double scale_p, want_p = reference((nn_metric)m, query, rows + order[r] * stride, dim, &scale_p);
                    float one_p = table.distance[m](query, rows + order[r] * stride, dim);
                    // Both forms share one body per instruction set: the same bits, not only close.
                    const char *form = !close_enough(one, want, scale) ? "one-to-one"
                                     : !close_enough(many[r], want, scale) ? "one-to-many"
                                     : !close_enough(picked[r], want_p, scale_p) ? "one-to-many, shuffled rows"
                                     : memcmp(&one, &many[r], sizeof one) || memcmp(&one_p, &picked[r], sizeof one)
                                         ? "one-to-many not bit-identical to one-to-one" : NULL;
                    if (form && failures++ == 0)
                        snprintf(message, message_size, "%s %s metric %d dim %zu offset %zu row %zu: got %g %g %g, want %g",
                                 nn_isa_name(isa), form, m, dim, offset, r, one, many[r], picked[r], want);
                }
            }
        }
    }
    munmap(region, span + page);
    return failures;
}
