/* launch: the suite's spawn-and-time helper for whole processes.
 *
 * Usage: launch [-w WARMUP] [-n RUNS] REPORT_FILE PROGRAM [ARGS...]
 *
 * Forks, execs PROGRAM, waits with wait4 and writes one line per timed run to REPORT_FILE:
 *   VB-LAUNCH wall_ns=N status=S maxrss_kib=K utime_us=U stime_us=T
 * wall_ns runs from just before fork() to wait4() returning (CLOCK_MONOTONIC).
 * With -w, PROGRAM first runs WARMUP times untimed (its stdout and stderr sent to
 * /dev/null), so the timed runs fork from a helper whose own fork path, page tables and
 * caches are warm (as hyperfine's --warmup); with -n it runs RUNS times back to back
 * (default 1), stopping after the first run that does not exit 0.
 * Forking from this small static program (not from the Python harness) keeps the
 * child's ru_maxrss free of the parent's memory, which fork/vfork would otherwise
 * carry into it until exec. The child's stdin, stdout and stderr are inherited.
 * The child gets PR_SET_PDEATHSIG=SIGKILL: it dies with this helper, which the harness
 * starts with the same setting, so a killed harness leaves no workload behind.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int usage(void) {
    fprintf(stderr, "usage: launch [-w WARMUP] [-n RUNS] REPORT_FILE PROGRAM [ARGS...]\n");
    return 2;
}

/* One run: fork, exec, wait4; -1 if fork or wait4 failed. quiet: output to /dev/null. */
static int run_once(char **argv, pid_t parent, int quiet, int64_t *wall, struct rusage *ru,
                    int *status) {
    int64_t start = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        perror("launch: fork");
        return -1;
    }
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
        if (quiet) {
            int null = open("/dev/null", O_WRONLY);
            if (null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) _exit(127);
        }
        execvp(argv[0], argv);
        perror("launch: exec");
        _exit(127);
    }
    if (wait4(pid, status, 0, ru) < 0) {
        perror("launch: wait4");
        return -1;
    }
    *wall = now_ns() - start;
    return 0;
}

int main(int argc, char **argv) {
    long warmup = 0, runs = 1;
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        char *end;
        long value = strtol(argv[i + 1], &end, 10);
        if (*end || value < 0 || value > 1000000) return usage();
        if (argv[i][1] == 'w' && !argv[i][2]) warmup = value;
        else if (argv[i][1] == 'n' && !argv[i][2] && value > 0) runs = value;
        else return usage();
    }
    if (argc - i < 2) return usage();
    FILE *report = fopen(argv[i], "w");
    if (!report) {
        perror("launch: cannot open report file");
        return 2;
    }
    char **program = &argv[i + 1];
    pid_t parent = getpid();
    int status = 0, code = 0;
    int64_t wall = 0;
    struct rusage ru;
    for (long w = 0; w < warmup; w++)
        if (run_once(program, parent, 1, &wall, &ru, &status) < 0) return 2;
    for (long r = 0; r < runs; r++) {
        if (run_once(program, parent, 0, &wall, &ru, &status) < 0) return 2;
        code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        fprintf(report,
                "VB-LAUNCH wall_ns=%lld status=%d maxrss_kib=%ld utime_us=%lld stime_us=%lld\n",
                (long long)wall, code, ru.ru_maxrss,
                (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec,
                (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec);
        if (code != 0) break;
    }
    fclose(report);
    return code;
}
