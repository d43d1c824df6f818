/* fileio: sequential and random file I/O throughput.
 *
 * Usage: fileio DIR [SIZE_MIB=64] [BLOCK_KIB=4] [SEED=1]
 *
 * Works on DIR/vb-fileio.dat with POSIX open/read/write/lseek/fsync/unlink
 * only (so it also runs under WASI with DIR preopened). Phases:
 *   1. sequential write of SIZE_MIB MiB in 1 MiB chunks, then fsync
 *   2. sequential read in 1 MiB chunks
 *   3. random reads of BLOCK_KIB KiB at block-aligned offsets drawn from a
 *      xorshift generator seeded with SEED; SIZE/BLOCK operations, at most
 *      16384
 *   4. cold sequential read: the file is closed, reopened read-only and its
 *      pages are dropped from the page cache with
 *      posix_fadvise(POSIX_FADV_DONTNEED) (the data is clean after the fsync,
 *      so the kernel can drop it), then read sequentially like phase 2
 *   5. cold random reads: dropped again, then read like phase 3
 *   6. random writes, likewise, then fsync
 * Phases 2-3 read from the page cache (warm: the file was just written);
 * phases 4-5 from the storage below it (cold). Under WASI the advice is
 * fd_advise, which the runtime passes to the host kernel's posix_fadvise; in
 * a VM it drops the guest's page cache (the host side is the VM's business).
 * Native builds check the drop with mincore() and print the percentage of the
 * file still resident (cold_resident_pct); WASI builds print "na".
 * cold_drop is "ok" or the errno name of a failed posix_fadvise, in which case
 * the cold rates are 0 and mean nothing.
 * The file is deleted at the end. Rates are MB/s (1e6 bytes per second).
 *
 * Result line:
 *   VB-RESULT workload=fileio size_mib=S block_kib=B seed=N ops=O
 *             seq_write_mbps=F seq_read_mbps=F rand_read_mbps=F
 *             rand_write_mbps=F cold_seq_read_mbps=F cold_rand_read_mbps=F
 *             cold_drop=ok|ERRNO cold_resident_pct=F|na checksum=0x<16 hex>
 * The checksum covers the data read in phases 2 and 3 (phases 4 and 5 read
 * the same data and must agree); it depends only on SIZE_MIB, BLOCK_KIB and
 * SEED.
 * Bad arguments: exit 2. I/O error: exit 1.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* mincore */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#ifndef __wasi__
#include <sys/mman.h>
#endif
#include <time.h>
#include <unistd.h>

#define CHUNK_BYTES (1u << 20)
#define MAX_RANDOM_OPS UINT64_C(16384)
#define MAX_SIZE_MIB UINT64_C(1048576) /* 1 TiB */
#define MAX_BLOCK_KIB UINT64_C(65536)  /* 64 MiB */
#define FILE_NAME "vb-fileio.dat"

static char *path;
static int fd = -1;

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

static void fail(const char *what) {
    int err = errno;
    fprintf(stderr, "fileio: %s %s: %s\n", what, path, strerror(err));
    if (fd >= 0) {
        close(fd);
    }
    unlink(path);
    exit(1);
}

static uint64_t xorshift(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

static void fill(unsigned char *buf, size_t len, uint64_t tag) {
    uint64_t state = tag * UINT64_C(0x9E3779B97F4A7C15) + UINT64_C(0xD1B54A32D192ED03);
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t v = xorshift(&state);
        memcpy(buf + i, &v, 8);
    }
}

static uint64_t digest(const unsigned char *buf, size_t len, uint64_t h) {
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, buf + i, 8);
        h = (h ^ v) * UINT64_C(0x100000001B3);
    }
    return h;
}

static void write_all(const unsigned char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail("cannot write");
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void read_all(unsigned char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = read(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail("cannot read");
        }
        if (n == 0) {
            errno = EIO;
            fail("unexpected end of file in");
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void seek_to(uint64_t offset) {
    if (lseek(fd, (off_t)offset, SEEK_SET) < 0) {
        fail("cannot seek in");
    }
}

/* Drop the file's pages from the page cache; 0 or the error number. */
static int drop_cache(uint64_t size) {
    int err = posix_fadvise(fd, 0, (off_t)size, POSIX_FADV_DONTNEED);
    return err;
}

/* Percentage of the file's pages still in the page cache; -1 when unknown. */
static double resident_pct(uint64_t size) {
#ifdef __wasi__
    (void)size;
    return -1.0;
#else
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) {
        return -1.0;
    }
    size_t pages = (size_t)((size + (uint64_t)page - 1) / (uint64_t)page);
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        return -1.0;
    }
    unsigned char *vec = malloc(pages);
    double pct = -1.0;
    if (vec != NULL && mincore(map, (size_t)size, vec) == 0) {
        size_t in = 0;
        for (size_t i = 0; i < pages; i++) {
            in += vec[i] & 1u;
        }
        pct = 100.0 * (double)in / (double)pages;
    }
    free(vec);
    munmap(map, (size_t)size);
    return pct;
#endif
}

static const char *errno_name(int err) {
    switch (err) {
    case 0: return "ok";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ESPIPE: return "ESPIPE";
    case ENOSYS: return "ENOSYS";
    case ENOTSUP: return "ENOTSUP";
    default: return "error";
    }
}

static double mbps(uint64_t bytes, int64_t ns) {
    if (ns <= 0) {
        ns = 1;
    }
    return (double)bytes / ((double)ns / 1e9) / 1e6;
}

int main(int argc, char **argv) {
    uint64_t size_mib = 64;
    uint64_t block_kib = 4;
    uint64_t seed = 1;
    if (argc < 2 || argc > 5 || argv[1][0] == '\0' ||
        (argc > 2 && parse_u64(argv[2], &size_mib) != 0) ||
        (argc > 3 && parse_u64(argv[3], &block_kib) != 0) ||
        (argc > 4 && parse_u64(argv[4], &seed) != 0)) {
        fprintf(stderr, "usage: fileio DIR [SIZE_MIB=64] [BLOCK_KIB=4] [SEED=1]\n");
        return 2;
    }
    if (size_mib < 1 || size_mib > MAX_SIZE_MIB) {
        fprintf(stderr, "fileio: SIZE_MIB must be between 1 and %" PRIu64 "\n", MAX_SIZE_MIB);
        return 2;
    }
    if (block_kib < 1 || block_kib > MAX_BLOCK_KIB || block_kib > size_mib * 1024u) {
        fprintf(stderr, "fileio: BLOCK_KIB must be between 1 and min(%" PRIu64
                        ", SIZE_MIB*1024)\n", MAX_BLOCK_KIB);
        return 2;
    }

    const char *dir = argv[1];
    size_t dir_len = strlen(dir);
    path = malloc(dir_len + sizeof(FILE_NAME) + 2);
    if (path == NULL) {
        fprintf(stderr, "fileio: out of memory\n");
        return 3;
    }
    memcpy(path, dir, dir_len);
    size_t pos = dir_len;
    if (pos == 0 || path[pos - 1] != '/') {
        path[pos++] = '/';
    }
    memcpy(path + pos, FILE_NAME, sizeof(FILE_NAME));

    const uint64_t size = size_mib * CHUNK_BYTES;
    const size_t block = (size_t)(block_kib * 1024u);
    const uint64_t nblocks = size / block;
    const uint64_t ops = nblocks < MAX_RANDOM_OPS ? nblocks : MAX_RANDOM_OPS;
    unsigned char *chunk = malloc(CHUNK_BYTES);
    unsigned char *blockbuf = malloc(block);
    if (chunk == NULL || blockbuf == NULL) {
        fprintf(stderr, "fileio: out of memory\n");
        return 3;
    }

    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fail("cannot create");
    }

    /* 1. sequential write + fsync */
    int64_t t0 = now_ns();
    for (uint64_t i = 0; i < size_mib; i++) {
        fill(chunk, CHUNK_BYTES, seed + i);
        write_all(chunk, CHUNK_BYTES);
    }
    if (fsync(fd) != 0) {
        fail("cannot fsync");
    }
    int64_t seq_write_ns = now_ns() - t0;

    /* 2. sequential read */
    uint64_t checksum = UINT64_C(0xCBF29CE484222325);
    seek_to(0);
    t0 = now_ns();
    for (uint64_t i = 0; i < size_mib; i++) {
        read_all(chunk, CHUNK_BYTES);
        checksum = digest(chunk, CHUNK_BYTES, checksum);
    }
    int64_t seq_read_ns = now_ns() - t0;

    /* 3. random reads */
    uint64_t rng = seed ^ UINT64_C(0x2545F4914F6CDD1D);
    if (rng == 0) {
        rng = 1;
    }
    t0 = now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        seek_to((xorshift(&rng) % nblocks) * block);
        read_all(blockbuf, block);
        checksum = digest(blockbuf, block, checksum);
    }
    int64_t rand_read_ns = now_ns() - t0;

    /* 4. cold sequential read: reopen read-only, drop the pages, read */
    if (close(fd) != 0) {
        fd = -1;
        fail("cannot close");
    }
    fd = open(path, O_RDONLY);
    if (fd < 0) {
        fail("cannot reopen");
    }
    int drop_err = drop_cache(size);
    double resident = drop_err == 0 ? resident_pct(size) : -1.0;
    uint64_t cold_sum = UINT64_C(0xCBF29CE484222325);
    int64_t cold_seq_read_ns = 0;
    int64_t cold_rand_read_ns = 0;
    if (drop_err == 0) {
        t0 = now_ns();
        for (uint64_t i = 0; i < size_mib; i++) {
            read_all(chunk, CHUNK_BYTES);
            cold_sum = digest(chunk, CHUNK_BYTES, cold_sum);
        }
        cold_seq_read_ns = now_ns() - t0;

        /* 5. cold random reads: drop again, same offsets as phase 3 */
        drop_err = drop_cache(size);
    }
    if (drop_err == 0) {
        double again = resident_pct(size);
        if (again > resident) {
            resident = again;
        }
        uint64_t cold_rng = seed ^ UINT64_C(0x2545F4914F6CDD1D);
        if (cold_rng == 0) {
            cold_rng = 1;
        }
        t0 = now_ns();
        for (uint64_t i = 0; i < ops; i++) {
            seek_to((xorshift(&cold_rng) % nblocks) * block);
            read_all(blockbuf, block);
            cold_sum = digest(blockbuf, block, cold_sum);
        }
        cold_rand_read_ns = now_ns() - t0;
        if (cold_sum != checksum) {
            errno = EIO;
            fail("cold reads disagree with warm reads of");
        }
    }
    if (close(fd) != 0) {
        fd = -1;
        fail("cannot close");
    }
    fd = open(path, O_RDWR);
    if (fd < 0) {
        fail("cannot reopen");
    }

    /* 6. random writes + fsync */
    fill(blockbuf, block, ~seed);
    t0 = now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        seek_to((xorshift(&rng) % nblocks) * block);
        blockbuf[0] = (unsigned char)i;
        write_all(blockbuf, block);
    }
    if (fsync(fd) != 0) {
        fail("cannot fsync");
    }
    int64_t rand_write_ns = now_ns() - t0;

    if (close(fd) != 0) {
        fd = -1;
        fail("cannot close");
    }
    fd = -1;
    if (unlink(path) != 0) {
        fprintf(stderr, "fileio: cannot delete %s: %s\n", path, strerror(errno));
        return 1;
    }

    printf("VB-RESULT workload=fileio size_mib=%" PRIu64 " block_kib=%" PRIu64 " seed=%" PRIu64
           " ops=%" PRIu64 " seq_write_mbps=%.3f seq_read_mbps=%.3f rand_read_mbps=%.3f"
           " rand_write_mbps=%.3f cold_seq_read_mbps=%.3f cold_rand_read_mbps=%.3f"
           " cold_drop=%s cold_resident_pct=",
           size_mib, block_kib, seed, ops, mbps(size, seq_write_ns), mbps(size, seq_read_ns),
           mbps(ops * block, rand_read_ns), mbps(ops * block, rand_write_ns),
           drop_err == 0 ? mbps(size, cold_seq_read_ns) : 0.0,
           drop_err == 0 ? mbps(ops * block, cold_rand_read_ns) : 0.0, errno_name(drop_err));
    if (resident < 0) {
        printf("na");
    } else {
        printf("%.1f", resident);
    }
    printf(" checksum=0x%016" PRIx64 "\n", checksum);
    free(chunk);
    free(blockbuf);
    free(path);
    return 0;
}
