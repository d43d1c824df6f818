/* mem: allocate and touch memory, then hold it (resident-memory measurements).
 *
 * Usage: mem MIB [HOLD_MS=0]
 *
 * Allocates MIB MiB, writes one 64-bit word into every 4 KiB page and reads
 * the words back into a checksum (so the allocation cannot be optimised
 * away), prints "VB-READY workload=mem mib=N" (flushed), sleeps HOLD_MS
 * milliseconds and prints
 *   VB-RESULT workload=mem mib=N hold_ms=H touched_pages=P checksum=C
 *             elapsed_ns=T
 * where T is the time spent allocating and touching. MIB=0 is allowed: the
 * process then only idles.
 * Bad arguments: exit 2. Allocation failure: exit 3.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PAGE_BYTES 4096u
#define MIB_BYTES (UINT64_C(1) << 20)

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * INT64_C(1000000000) + (int64_t)ts.tv_nsec;
}

static int parse_u64(const char *text, uint64_t *out) {
    char *end = NULL;
    unsigned long long value;
    if (text == NULL || *text < '0' || *text > '9') {
        return -1;
    }
    errno = 0;
    value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
        return -1;
    }
    *out = (uint64_t)value;
    return 0;
}

static void sleep_ms(uint64_t ms) {
    struct timespec req;
    req.tv_sec = (time_t)(ms / 1000u);
    req.tv_nsec = (long)((ms % 1000u) * 1000000u);
    while (nanosleep(&req, &req) != 0 && errno == EINTR) {
    }
}

int main(int argc, char **argv) {
    uint64_t mib = 0;
    uint64_t hold_ms = 0;
    if (argc < 2 || argc > 3 || parse_u64(argv[1], &mib) != 0 ||
        (argc == 3 && parse_u64(argv[2], &hold_ms) != 0)) {
        fprintf(stderr, "usage: mem MIB [HOLD_MS=0]  (non-negative integers)\n");
        return 2;
    }

    int64_t start = now_ns();
    uint64_t pages = 0;
    uint64_t checksum = 0;
    if (mib > 0) {
        if (mib > (uint64_t)SIZE_MAX / MIB_BYTES) {
            fprintf(stderr, "mem: cannot allocate %" PRIu64 " MiB: exceeds address space\n",
                    mib);
            return 3;
        }
        size_t bytes = (size_t)(mib * MIB_BYTES);
        unsigned char *buf = malloc(bytes);
        if (buf == NULL) {
            fprintf(stderr, "mem: cannot allocate %" PRIu64 " MiB\n", mib);
            return 3;
        }
        pages = (uint64_t)(bytes / PAGE_BYTES);
        /* Volatile accesses: every page is really written and read back. */
        volatile uint64_t *words = (volatile uint64_t *)buf;
        const size_t stride = PAGE_BYTES / sizeof(uint64_t);
        for (uint64_t p = 0; p < pages; p++) {
            words[p * stride] = p * UINT64_C(0x9E3779B97F4A7C15) + 1u;
        }
        for (uint64_t p = 0; p < pages; p++) {
            checksum += words[p * stride];
        }
        /* The buffer stays allocated until the process exits. */
    }
    int64_t elapsed = now_ns() - start;

    printf("VB-READY workload=mem mib=%" PRIu64 "\n", mib);
    fflush(stdout);

    if (hold_ms > 0) {
        sleep_ms(hold_ms);
    }

    printf("VB-RESULT workload=mem mib=%" PRIu64 " hold_ms=%" PRIu64 " touched_pages=%" PRIu64
           " checksum=0x%016" PRIx64 " elapsed_ns=%" PRId64 "\n",
           mib, hold_ms, pages, checksum, elapsed);
    fflush(stdout);
    return 0;
}
