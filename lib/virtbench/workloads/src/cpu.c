/* cpu: deterministic compute kernels that tell engines and emulators apart.
 *
 * Usage: cpu [ITERATIONS_MILLIONS=100]      (the hash kernel, as before)
 *        cpu KERNEL SIZE [ARG]
 *
 * Kernels (each stresses one thing; SIZE scales the work linearly except for fib):
 *   hash     integer: a xorshift64 / FNV-1a hash chain of SIZE * 1e6 iterations, then a
 *            sieve of Eratosthenes up to 1e6 counting the primes (latency-bound integer ALU)
 *   nbody    floating point: SIZE * 1000 steps of the 5-body simulation (+ - * / and sqrt
 *            only; built with -ffp-contract=off so no target fuses a multiply-add)
 *   chase    memory-bound: SIZE * 1000 dependent loads following one random cycle through
 *            a buffer of ARG MiB (default 64) of 32-bit indices; building the cycle (one
 *            sequential and one scattered write pass) is included
 *   sort     branch-heavy: SIZE rounds of filling 65536 pseudo-random 32-bit values and
 *            sorting them with a hand-written quicksort (insertion sort below 16)
 *   fib      call-heavy: naive recursive fib(SIZE) (the work grows about 1.618x per step)
 *   syscall  system calls: SIZE * 1000 one-byte pwrite() calls at offset 0 of a file in
 *            the directory ARG (required), then one pread(); the file is removed
 *
 * Only fixed-width integer types and IEEE double arithmetic are used, so every build
 * (native, static, wasm32) prints the same checksum for the same kernel and size.
 *
 * Result line:
 *   VB-RESULT workload=cpu kernel=<name> size=<SIZE> checksum=0x<16 hex digits>
 *             elapsed_ns=<int> [kernel-specific keys]
 * the hash kernel adds iterations=<total> iterations_millions=<N> primes=<count>.
 * elapsed_ns covers the kernel only (CLOCK_MONOTONIC), not start-up or exit.
 * Bad arguments: message on stderr, exit 2. A failed allocation or system call: exit 3.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SIEVE_LIMIT 1000000u
#define SORT_N 65536u
#define CHASE_DEFAULT_MIB 64u
#define CHASE_MAX_MIB 1024u
#define FIB_MAX 60u

static unsigned char sieve[SIEVE_LIMIT + 1];
static uint32_t sort_buf[SORT_N];

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

static uint64_t mix64(uint64_t h, uint64_t v) {
    h ^= v + UINT64_C(0x9E3779B97F4A7C15) + (h << 6) + (h >> 2);
    h *= UINT64_C(0x100000001B3);
    return h ^ (h >> 29);
}

/* -- hash: the original integer kernel ------------------------------------------------ */

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

/* -- nbody: floating point --------------------------------------------------------------- */

#define NBODIES 5
#define PI 3.141592653589793
#define SOLAR_MASS (4 * PI * PI)
#define DAYS_PER_YEAR 365.24

struct body {
    double x, y, z, vx, vy, vz, mass;
};

static double fsqrt(double v) {
    return __builtin_sqrt(v); /* sqrtsd / f64.sqrt: correctly rounded everywhere */
}

static double energy(const struct body *b) {
    double e = 0.0;
    for (int i = 0; i < NBODIES; i++) {
        e += 0.5 * b[i].mass * (b[i].vx * b[i].vx + b[i].vy * b[i].vy + b[i].vz * b[i].vz);
        for (int j = i + 1; j < NBODIES; j++) {
            double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
            e -= (b[i].mass * b[j].mass) / fsqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}

static void advance(struct body *b, double dt) {
    for (int i = 0; i < NBODIES; i++) {
        for (int j = i + 1; j < NBODIES; j++) {
            double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
            double d2 = dx * dx + dy * dy + dz * dz;
            double mag = dt / (d2 * fsqrt(d2));
            b[i].vx -= dx * b[j].mass * mag;
            b[i].vy -= dy * b[j].mass * mag;
            b[i].vz -= dz * b[j].mass * mag;
            b[j].vx += dx * b[i].mass * mag;
            b[j].vy += dy * b[i].mass * mag;
            b[j].vz += dz * b[i].mass * mag;
        }
    }
    for (int i = 0; i < NBODIES; i++) {
        b[i].x += dt * b[i].vx;
        b[i].y += dt * b[i].vy;
        b[i].z += dt * b[i].vz;
    }
}

static uint64_t double_bits(double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

static uint64_t nbody(uint64_t steps, double *energy_out) {
    struct body b[NBODIES] = {
        {0, 0, 0, 0, 0, 0, SOLAR_MASS},
        {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
         1.66007664274403694e-03 * DAYS_PER_YEAR, 7.69901118419740425e-03 * DAYS_PER_YEAR,
         -6.90460016972063023e-05 * DAYS_PER_YEAR, 9.54791938424326609e-04 * SOLAR_MASS},
        {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
         -2.76742510726862411e-03 * DAYS_PER_YEAR, 4.99852801234917238e-03 * DAYS_PER_YEAR,
         2.30417297573763929e-05 * DAYS_PER_YEAR, 2.85885980666130812e-04 * SOLAR_MASS},
        {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
         2.96460137564761618e-03 * DAYS_PER_YEAR, 2.37847173959480950e-03 * DAYS_PER_YEAR,
         -2.96589568540237556e-05 * DAYS_PER_YEAR, 4.36624404335156298e-05 * SOLAR_MASS},
        {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
         2.68067772490389322e-03 * DAYS_PER_YEAR, 1.62824170038242295e-03 * DAYS_PER_YEAR,
         -9.51592254519715870e-05 * DAYS_PER_YEAR, 5.15138902046611451e-05 * SOLAR_MASS},
    };
    double px = 0, py = 0, pz = 0;
    for (int i = 0; i < NBODIES; i++) {
        px += b[i].vx * b[i].mass;
        py += b[i].vy * b[i].mass;
        pz += b[i].vz * b[i].mass;
    }
    b[0].vx = -px / SOLAR_MASS;
    b[0].vy = -py / SOLAR_MASS;
    b[0].vz = -pz / SOLAR_MASS;
    for (uint64_t s = 0; s < steps; s++) {
        advance(b, 0.01);
    }
    double e = energy(b);
    uint64_t h = double_bits(e);
    for (int i = 0; i < NBODIES; i++) {
        h = mix64(h, double_bits(b[i].x));
        h = mix64(h, double_bits(b[i].y));
        h = mix64(h, double_bits(b[i].z));
    }
    *energy_out = e;
    return h;
}

/* -- chase: memory-bound pointer chasing ------------------------------------------------- */

/* A bijection on [0, 2^bits): odd multiplies and xor-shifts, each invertible mod 2^bits. */
static uint32_t scramble(uint32_t x, uint32_t bits) {
    uint32_t mask = bits >= 32 ? UINT32_MAX : (UINT32_C(1) << bits) - 1u;
    uint32_t s = bits / 2u + 1u;
    x = (x * UINT32_C(0x9E3779B1)) & mask;
    x ^= x >> s;
    x = (x * UINT32_C(0x85EBCA6B) + UINT32_C(0x6B43A9B5)) & mask;
    x ^= x >> s;
    x = (x * UINT32_C(0xC2B2AE35)) & mask;
    return x;
}

/* The j-th element of a pseudo-random permutation of [0, n): cycle-walking. */
static uint32_t perm(uint32_t j, uint32_t n, uint32_t bits) {
    uint32_t x = scramble(j, bits);
    while (x >= n) {
        x = scramble(x, bits);
    }
    return x;
}

static int chase(uint64_t steps, uint64_t mib, uint64_t *out) {
    uint32_t n = (uint32_t)(mib * (UINT64_C(1) << 20) / sizeof(uint32_t));
    uint32_t bits = 1;
    while (bits < 32 && (UINT32_C(1) << bits) < n) {
        bits++;
    }
    uint32_t *next = malloc((size_t)n * sizeof *next);
    if (next == NULL) {
        return -1;
    }
    /* visit order p(0), p(1), ..., p(n-1), p(0): one cycle through every entry */
    uint32_t first = perm(0, n, bits), prev = first;
    for (uint32_t j = 1; j < n; j++) {
        uint32_t cur = perm(j, n, bits);
        next[prev] = cur;
        prev = cur;
    }
    next[prev] = first;
    uint32_t at = first;
    uint64_t sum = 0;
    for (uint64_t s = 0; s < steps; s++) {
        at = next[at];
        sum += at;
    }
    *out = mix64(sum, at);
    free(next);
    return 0;
}

/* -- sort: branch-heavy quicksort -------------------------------------------------------- */

static void insertion_sort(uint32_t *a, int64_t lo, int64_t hi) {
    for (int64_t i = lo + 1; i <= hi; i++) {
        uint32_t v = a[i];
        int64_t j = i - 1;
        while (j >= lo && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static void quicksort(uint32_t *a, int64_t lo, int64_t hi) {
    while (hi - lo >= 16) {
        int64_t mid = lo + (hi - lo) / 2;
        /* median of three as the pivot */
        if (a[mid] < a[lo]) { uint32_t t = a[mid]; a[mid] = a[lo]; a[lo] = t; }
        if (a[hi] < a[lo]) { uint32_t t = a[hi]; a[hi] = a[lo]; a[lo] = t; }
        if (a[hi] < a[mid]) { uint32_t t = a[hi]; a[hi] = a[mid]; a[mid] = t; }
        uint32_t pivot = a[mid];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                uint32_t t = a[i]; a[i] = a[j]; a[j] = t;
                i++;
                j--;
            }
        }
        /* recurse into the smaller part, loop on the larger: depth stays O(log n) */
        if (j - lo < hi - i) {
            quicksort(a, lo, j);
            lo = i;
        } else {
            quicksort(a, i, hi);
            hi = j;
        }
    }
    insertion_sort(a, lo, hi);
}

static uint64_t sort_rounds(uint64_t rounds) {
    uint64_t x = UINT64_C(0x2545F4914F6CDD1D), h = UINT64_C(0xCBF29CE484222325);
    for (uint64_t r = 0; r < rounds; r++) {
        for (uint32_t i = 0; i < SORT_N; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            sort_buf[i] = (uint32_t)(x >> 32);
        }
        quicksort(sort_buf, 0, SORT_N - 1);
        uint64_t unsorted = 0;
        for (uint32_t i = 1; i < SORT_N; i++) {
            unsorted += sort_buf[i - 1] > sort_buf[i];
        }
        h = mix64(h, unsorted);
        h = mix64(h, sort_buf[0]);
        h = mix64(h, sort_buf[SORT_N / 2]);
        h = mix64(h, sort_buf[SORT_N - 1]);
    }
    return h;
}

/* -- fib: call-heavy recursion ----------------------------------------------------------- */

static uint64_t fib(uint32_t n) {
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/* -- syscall: one-byte writes to a file -------------------------------------------------- */

static int syscalls(uint64_t calls, const char *dir, uint64_t *out) {
    char path[4096];
    int len = snprintf(path, sizeof path, "%s/vb-cpu-syscall.tmp", dir);
    if (len < 0 || (size_t)len >= sizeof path) {
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        return -1;
    }
    uint64_t written = 0;
    unsigned char byte = 0;
    for (uint64_t i = 0; i < calls; i++) {
        byte = (unsigned char)(i * 131u + 7u);
        written += (uint64_t)pwrite(fd, &byte, 1, 0);
    }
    unsigned char back = 0;
    ssize_t got = pread(fd, &back, 1, 0);
    close(fd);
    unlink(path);
    if (written != calls || (calls > 0 && (got != 1 || back != byte))) {
        return -1;
    }
    *out = mix64(written, back);
    return 0;
}

/* -- main -------------------------------------------------------------------------------- */

static int usage(void) {
    fprintf(stderr,
            "usage: cpu [ITERATIONS_MILLIONS=100]\n"
            "       cpu KERNEL SIZE [ARG]\n"
            "  hash SIZE: millions of hash-chain iterations (then a 1e6 sieve)\n"
            "  nbody SIZE: thousands of 5-body steps\n"
            "  chase SIZE [MIB=64]: thousands of dependent loads over MIB MiB (1..%u)\n"
            "  sort SIZE: rounds of sorting %u values\n"
            "  fib SIZE: naive fib(SIZE), SIZE <= %u\n"
            "  syscall SIZE DIR: thousands of 1-byte pwrite calls to a file in DIR\n",
            CHASE_MAX_MIB, SORT_N, FIB_MAX);
    return 2;
}

static int run_hash(uint64_t millions) {
    if (millions > UINT64_MAX / UINT64_C(1000000)) {
        fprintf(stderr, "cpu: ITERATIONS_MILLIONS too large: %" PRIu64 "\n", millions);
        return 2;
    }
    uint64_t iterations = millions * UINT64_C(1000000);
    int64_t start = now_ns();
    uint64_t checksum = hash_chain(iterations);
    uint32_t primes = count_primes();
    int64_t elapsed = now_ns() - start;
    printf("VB-RESULT workload=cpu kernel=hash size=%" PRIu64 " iterations=%" PRIu64
           " iterations_millions=%" PRIu64 " checksum=0x%016" PRIx64 " primes=%" PRIu32
           " elapsed_ns=%" PRId64 "\n",
           millions, iterations, millions, checksum, primes, elapsed);
    return 0;
}

int main(int argc, char **argv) {
    uint64_t size = 100;
    if (argc <= 2) { /* the original interface: cpu [ITERATIONS_MILLIONS] */
        if (argc == 2 && parse_u64(argv[1], &size) != 0) {
            return usage();
        }
        return run_hash(size);
    }
    const char *kernel = argv[1];
    if (argc > 4 || parse_u64(argv[2], &size) != 0) {
        return usage();
    }
    const char *arg = argc == 4 ? argv[3] : NULL;
    if (strcmp(kernel, "hash") == 0) {
        return arg ? usage() : run_hash(size);
    }

    uint64_t checksum = 0, mib = CHASE_DEFAULT_MIB;
    double e = 0.0;
    int64_t start = 0, elapsed = 0;
    if (strcmp(kernel, "nbody") == 0) {
        if (arg || size > UINT64_MAX / 1000u) {
            return usage();
        }
        start = now_ns();
        checksum = nbody(size * 1000u, &e);
        elapsed = now_ns() - start;
        printf("VB-RESULT workload=cpu kernel=nbody size=%" PRIu64 " steps=%" PRIu64
               " energy=%.9f checksum=0x%016" PRIx64 " elapsed_ns=%" PRId64 "\n",
               size, size * 1000u, e, checksum, elapsed);
    } else if (strcmp(kernel, "chase") == 0) {
        if ((arg && (parse_u64(arg, &mib) != 0 || mib < 1 || mib > CHASE_MAX_MIB)) ||
            size > UINT64_MAX / 1000u) {
            return usage();
        }
        start = now_ns();
        if (chase(size * 1000u, mib, &checksum) != 0) {
            fprintf(stderr, "cpu: cannot allocate %" PRIu64 " MiB\n", mib);
            return 3;
        }
        elapsed = now_ns() - start;
        printf("VB-RESULT workload=cpu kernel=chase size=%" PRIu64 " steps=%" PRIu64
               " buffer_mib=%" PRIu64 " checksum=0x%016" PRIx64 " elapsed_ns=%" PRId64 "\n",
               size, size * 1000u, mib, checksum, elapsed);
    } else if (strcmp(kernel, "sort") == 0) {
        if (arg) {
            return usage();
        }
        start = now_ns();
        checksum = sort_rounds(size);
        elapsed = now_ns() - start;
        printf("VB-RESULT workload=cpu kernel=sort size=%" PRIu64 " values=%u checksum=0x%016"
               PRIx64 " elapsed_ns=%" PRId64 "\n", size, SORT_N, checksum, elapsed);
    } else if (strcmp(kernel, "fib") == 0) {
        if (arg || size > FIB_MAX) {
            return usage();
        }
        start = now_ns();
        checksum = fib((uint32_t)size);
        elapsed = now_ns() - start;
        printf("VB-RESULT workload=cpu kernel=fib size=%" PRIu64 " checksum=0x%016" PRIx64
               " elapsed_ns=%" PRId64 "\n", size, checksum, elapsed);
    } else if (strcmp(kernel, "syscall") == 0) {
        if (!arg || size > UINT64_MAX / 1000u) {
            return usage();
        }
        start = now_ns();
        if (syscalls(size * 1000u, arg, &checksum) != 0) {
            fprintf(stderr, "cpu: syscall kernel failed in %s: %s\n", arg, strerror(errno));
            return 3;
        }
        elapsed = now_ns() - start;
        printf("VB-RESULT workload=cpu kernel=syscall size=%" PRIu64 " calls=%" PRIu64
               " checksum=0x%016" PRIx64 " elapsed_ns=%" PRId64 "\n",
               size, size * 1000u, checksum, elapsed);
    } else {
        fprintf(stderr, "cpu: unknown kernel %s\n", kernel);
        return usage();
    }
    return 0;
}
