// Instruction-set detection, validation of incoming rows, and facts about the build.
#include "nn_base.h"

#include <math.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

// The OS must save the wide registers on a context switch (XCR0), not only the CPU have them.
static bool x86_os_saves(uint64_t mask) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((((uint64_t)hi << 32) | lo) & mask) == mask;
}

static bool x86_has_avx2_fma(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12);
    if (!(osxsave && avx && fma) || !x86_os_saves(0x6)) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return b & (1u << 5);
}

static bool x86_has_avx512f(void) {
    unsigned a, b, c, d;
    if (!x86_has_avx2_fma()) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return (b & (1u << 16)) && x86_os_saves(0xE6);  // opmask + ZMM state
}
#endif

const char *nn_isa_name(nn_isa isa) {
    switch (isa) {
    case NN_ISA_AUTO: return "auto";
    case NN_ISA_SCALAR: return "scalar";
    case NN_ISA_AVX2: return "avx2";
    case NN_ISA_AVX512: return "avx512";
    case NN_ISA_NEON: return "neon";
    }
    return "unknown";
}

bool nn_isa_supported(nn_isa isa) {
    switch (isa) {
    case NN_ISA_AUTO:
    case NN_ISA_SCALAR:
        return true;
#if defined(__x86_64__)
    case NN_ISA_AVX2: return x86_has_avx2_fma();
    case NN_ISA_AVX512: return x86_has_avx512f();
#endif
#if defined(__aarch64__)
    case NN_ISA_NEON: return true;  // Advanced SIMD is mandatory on AArch64
#endif
    default: return false;
    }
}

nn_isa nn_isa_best(void) {
    static const nn_isa preference[] = {NN_ISA_AVX512, NN_ISA_AVX2, NN_ISA_NEON};
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++)
        if (nn_isa_supported(preference[i])) return preference[i];
    return NN_ISA_SCALAR;
}

bool nn_built_with_openmp(void) {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

size_t nn_hardware_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

nn_status nn_validate_rows(const float *rows, size_t n, size_t dim, size_t stride, nn_metric metric,
                           bool bounded, size_t *bad_row) {
    for (size_t r = 0; r < n; r++) {
        const float *v = rows + r * stride;
        // x * 0 is 0 for every finite x and NaN for NaN and ±Inf: one test per row, not per value.
        // The norm in double: (1e-25)^2 underflows a float, yet such a vector normalizes fine.
        float poison = 0.0f;
        double norm = 0.0;
        for (size_t i = 0; i < dim; i++) {
            poison += v[i] * 0.0f;
            norm += (double)v[i] * v[i];
        }
        if (poison != 0.0f) {
            *bad_row = r;
            return NN_ERR_NOT_FINITE;
        }
        if (metric == NN_METRIC_COSINE && !(norm > 0.0f)) {
            *bad_row = r;
            return NN_ERR_ZERO_VECTOR;
        }
        if (bounded && metric != NN_METRIC_COSINE && norm > NN_MAX_SQUARED_NORM) {
            *bad_row = r;
            return NN_ERR_TOO_LARGE;
        }
    }
    return NN_OK;
}
