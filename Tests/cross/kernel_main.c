// Runs the kernel checks of every instruction set this CPU has, and the top-k selection's, as a
// standalone program: built for arm64 with gcc-aarch64-linux-gnu and run under qemu-user, it
// tests the NEON kernels.
// See .ci/cross-kernels.
#include "CKernelChecks.h"

#include <stdio.h>

int main(void) {
    static const nn_isa all[] = {NN_ISA_SCALAR, NN_ISA_AVX2, NN_ISA_AVX512, NN_ISA_NEON};
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        char message[512];
        int failures = nn_check_kernels(all[i], message, sizeof message);
        if (failures < 0) continue;
        printf("%-7s %s%s\n", nn_isa_name(all[i]), failures ? "FAILED: " : "ok", failures ? message : "");
        failures ? failed++ : passed++;
    }
    printf("kernels: %d passed, %d failed\n", passed, failed);
    char message[512];
    int topk_failures = nn_check_topk(message, sizeof message);
    printf("top-k selection: %s%s\n", topk_failures ? "FAILED: " : "ok", topk_failures ? message : "");
    return failed || topk_failures ? 1 : 0;
}
