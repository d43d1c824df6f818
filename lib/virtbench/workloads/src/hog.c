/* hog: a co-located "attacker" that exhausts one resource (isolation experiments).
 *
 * Usage: hog KIND SECONDS [AMOUNT] [DIR]
 *   cpu   spin for SECONDS                             (AMOUNT unused)
 *   mem   allocate and touch up to AMOUNT MiB in 16 MiB steps, hold for SECONDS
 *   io    write + fsync 1 MiB blocks to DIR/vb-hog.dat for SECONDS, rewinding every
 *         AMOUNT MiB (default 256)
 *   fd    open DIR/vb-hog.fd up to AMOUNT times (default 1000000), hold for SECONDS
 *   proc  fork up to AMOUNT children (default 2000) that sleep SECONDS (not under WASI)
 * Prints "VB-READY workload=hog kind=K taken=N limit_hit=0|1" once the attack is running
 * (for mem/fd/proc: once the resource is taken: MiB, descriptors, children), then "VB-RESULT workload=hog kind=K taken=N limit_hit=0|1 ..."
 * at the end. Bad arguments: exit 2. An attack that the platform cannot express prints
 * "VB-RESULT workload=hog kind=K unsupported=1" and exits 4.
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
#ifndef __wasi__
#include <sys/wait.h>
#endif

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * INT64_C(1000000000) + (int64_t)ts.tv_nsec;
}

static void sleep_until(int64_t deadline) {
    while (now_ns() < deadline) {
        struct timespec req = {0, 50 * 1000 * 1000};
        nanosleep(&req, NULL);
    }
}

static void ready(const char *kind, uint64_t taken, int hit) {
    printf("VB-READY workload=hog kind=%s taken=%" PRIu64 " limit_hit=%d\n", kind, taken, hit);
    fflush(stdout);
}

static int attack_cpu(int64_t deadline) {
    volatile uint64_t x = 88172645463325252ULL;
    uint64_t loops = 0;
    ready("cpu", 0, 0);
    while (now_ns() < deadline) {
        for (int i = 0; i < 100000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        loops++;
    }
    printf("VB-RESULT workload=hog kind=cpu taken=%" PRIu64 " limit_hit=0 checksum=%" PRIu64 "\n",
           loops, (uint64_t)x);
    return 0;
}

#define MAX_CHUNKS 4096
static unsigned char *volatile chunks[MAX_CHUNKS]; /* kept reachable: the memory is really held */

static int attack_mem(int64_t deadline, uint64_t mib) {
    const uint64_t step = 16;
    uint64_t taken = 0, sum = 0;
    int hit = 0, n = 0;
    while (taken + step <= mib && n < MAX_CHUNKS) {
        unsigned char *p = malloc(step << 20);
        if (!p) {
            hit = 1;
            break;
        }
        for (uint64_t off = 0; off < (step << 20); off += 4096) p[off] = (unsigned char)(off >> 12) | 1;
        for (uint64_t off = 0; off < (step << 20); off += 4096) sum += p[off];
        chunks[n++] = p;
        taken += step;
    }
    ready("mem", taken, hit);
    sleep_until(deadline);
    for (int i = 0; i < n; i++) sum += chunks[i][4096];
    printf("VB-RESULT workload=hog kind=mem taken=%" PRIu64 " limit_hit=%d unit=MiB checksum=%" PRIu64
           "\n", taken, hit, sum);
    return 0;
}

static int attack_io(int64_t deadline, uint64_t mib, const char *dir) {
    char path[4096];
    static unsigned char block[1 << 20];
    snprintf(path, sizeof path, "%s/vb-hog.dat", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0) {
        fprintf(stderr, "hog: cannot open %s: %s\n", path, strerror(errno));
        return 3;
    }
    memset(block, 0xa5, sizeof block);
    uint64_t written = 0, pos = 0;
    int hit = 0;
    ready("io", 0, 0);
    while (now_ns() < deadline) {
        if (pos >= mib) {
            lseek(fd, 0, SEEK_SET);
            pos = 0;
        }
        if (write(fd, block, sizeof block) != (ssize_t)sizeof block) {
            hit = 1;
            break;
        }
        fsync(fd);
        written++;
        pos++;
    }
    close(fd);
    unlink(path);
    printf("VB-RESULT workload=hog kind=io taken=%" PRIu64 " limit_hit=%d unit=MiB\n", written, hit);
    return 0;
}

static int attack_fd(int64_t deadline, uint64_t max, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/vb-hog.fd", dir);
    int first = open(path, O_CREAT | O_RDWR, 0600);
    if (first < 0) {
        fprintf(stderr, "hog: cannot open %s: %s\n", path, strerror(errno));
        return 3;
    }
    uint64_t taken = 1;
    int hit = 0;
    while (taken < max) {
        if (open(path, O_RDONLY) < 0) {
            hit = 1;
            break;
        }
        taken++;
    }
    ready("fd", taken, hit);
    sleep_until(deadline);
    unlink(path);
    printf("VB-RESULT workload=hog kind=fd taken=%" PRIu64 " limit_hit=%d errno=%d\n", taken, hit,
           hit ? errno : 0);
    return 0;
}

static int attack_proc(int64_t deadline, uint64_t max) {
#ifdef __wasi__
    (void)deadline;
    (void)max;
    printf("VB-RESULT workload=hog kind=proc unsupported=1 why=wasi-has-no-process-creation\n");
    return 4;
#else
    uint64_t taken = 0;
    int hit = 0;
    while (taken < max) {
        pid_t pid = fork();
        if (pid < 0) {
            hit = 1;
            break;
        }
        if (pid == 0) {
            sleep_until(deadline);
            _exit(0);
        }
        taken++;
    }
    ready("proc", taken, hit);
    sleep_until(deadline);
    while (wait(NULL) > 0) {
    }
    printf("VB-RESULT workload=hog kind=proc taken=%" PRIu64 " limit_hit=%d\n", taken, hit);
    return 0;
#endif
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: hog cpu|mem|io|fd|proc SECONDS [AMOUNT] [DIR]\n");
        return 2;
    }
    const char *kind = argv[1];
    char *end = NULL;
    double seconds = strtod(argv[2], &end);
    if (end == argv[2] || seconds <= 0) {
        fprintf(stderr, "hog: SECONDS must be a positive number, got %s\n", argv[2]);
        return 2;
    }
    uint64_t amount = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
    const char *dir = argc > 4 ? argv[4] : ".";
    int64_t deadline = now_ns() + (int64_t)(seconds * 1e9);
    if (strcmp(kind, "cpu") == 0) return attack_cpu(deadline);
    if (strcmp(kind, "mem") == 0) return attack_mem(deadline, amount ? amount : 1024);
    if (strcmp(kind, "io") == 0) return attack_io(deadline, amount ? amount : 256, dir);
    if (strcmp(kind, "fd") == 0) return attack_fd(deadline, amount ? amount : 1000000, dir);
    if (strcmp(kind, "proc") == 0) return attack_proc(deadline, amount ? amount : 2000);
    fprintf(stderr, "hog: unknown kind %s; valid: cpu, mem, io, fd, proc\n", kind);
    return 2;
}
