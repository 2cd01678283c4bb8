// The checks' random numbers: xorshift64, seeded by each check, so every run tests the same cases.
#ifndef CHECK_RANDOM_H
#define CHECK_RANDOM_H

#include <stdint.h>

static inline uint64_t next_random(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

#endif
