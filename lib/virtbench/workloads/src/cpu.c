/* cpu: a deterministic 64-bit integer kernel.
 *
 * Usage: cpu [ITERATIONS_MILLIONS=100]
 *
 * Runs a xorshift64 / FNV-1a style hash chain for ITERATIONS_MILLIONS * 1e6
 * iterations, then a sieve of Eratosthenes up to 1e6 counting the primes.
 * Only fixed-width integer types are used, so every build (native, static,
 * wasm32) prints the same checksum and prime count.
 *
 * Result line:
 *   VB-RESULT workload=cpu iterations=<total> iterations_millions=<N>
 *             checksum=0x<16 hex digits> primes=<count> elapsed_ns=<int>
 * Bad arguments: message on stderr, exit 2.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIEVE_LIMIT 1000000u

static unsigned char sieve[SIEVE_LIMIT + 1];

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * INT64_C(1000000000) + (int64_t)ts.tv_nsec;
}

/* Parses a non-negative decimal integer; returns 0 on success. */
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

static uint64_t hash_chain(uint64_t iterations) {
    uint64_t x = UINT64_C(0x9E3779B97F4A7C15);
    uint64_t h = UINT64_C(0xCBF29CE484222325); /* FNV-1a offset basis */
    for (uint64_t i = 0; i < iterations; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        h ^= x + i;
        h *= UINT64_C(0x100000001B3); /* FNV-1a 64-bit prime */
        h = (h << 29) | (h >> 35);
    }
    return h ^ x;
}

static uint32_t count_primes(void) {
    uint32_t count = 0;
    memset(sieve, 1, sizeof sieve);
    sieve[0] = 0;
    sieve[1] = 0;
    for (uint64_t i = 2; i * i <= SIEVE_LIMIT; i++) {
        if (sieve[i]) {
            for (uint64_t j = i * i; j <= SIEVE_LIMIT; j += i) {
                sieve[j] = 0;
            }
        }
    }
    for (uint32_t i = 0; i <= SIEVE_LIMIT; i++) {
        count += sieve[i];
    }
    return count;
}

int main(int argc, char **argv) {
    uint64_t millions = 100;
    if (argc > 2 || (argc == 2 && parse_u64(argv[1], &millions) != 0)) {
        fprintf(stderr, "usage: cpu [ITERATIONS_MILLIONS=100]  (non-negative integer)\n");
        return 2;
    }
    if (millions > UINT64_MAX / UINT64_C(1000000)) {
        fprintf(stderr, "cpu: ITERATIONS_MILLIONS too large: %s\n", argv[1]);
        return 2;
    }
    uint64_t iterations = millions * UINT64_C(1000000);

    int64_t start = now_ns();
    uint64_t checksum = hash_chain(iterations);
    uint32_t primes = count_primes();
    int64_t elapsed = now_ns() - start;

    printf("VB-RESULT workload=cpu iterations=%" PRIu64 " iterations_millions=%" PRIu64
           " checksum=0x%016" PRIx64 " primes=%" PRIu32 " elapsed_ns=%" PRId64 "\n",
           iterations, millions, checksum, primes, elapsed);
    return 0;
}
