/* launch: the suite's spawn-and-time helper for whole processes.
 *
 * Usage: launch REPORT_FILE PROGRAM [ARGS...]
 *
 * Forks, execs PROGRAM, waits with wait4 and writes one line to REPORT_FILE:
 *   VB-LAUNCH wall_ns=N status=S maxrss_kib=K utime_us=U stime_us=T
 * wall_ns runs from just before fork() to wait4() returning (CLOCK_MONOTONIC).
 * Forking from this small static program (not from the Python harness) keeps the
 * child's ru_maxrss free of the parent's memory, which fork/vfork would otherwise
 * carry into it until exec. The child's stdin, stdout and stderr are inherited.
 * The child gets PR_SET_PDEATHSIG=SIGKILL: it dies with this helper, which the harness
 * starts with the same setting, so a killed harness leaves no workload behind.
 */
#define _GNU_SOURCE
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

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: launch REPORT_FILE PROGRAM [ARGS...]\n");
        return 2;
    }
    FILE *report = fopen(argv[1], "w");
    if (!report) {
        perror("launch: cannot open report file");
        return 2;
    }
    pid_t parent = getpid();
    int64_t start = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        perror("launch: fork");
        return 2;
    }
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
        execvp(argv[2], &argv[2]);
        perror("launch: exec");
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("launch: wait4");
        return 2;
    }
    int64_t end = now_ns();
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fprintf(report, "VB-LAUNCH wall_ns=%lld status=%d maxrss_kib=%ld utime_us=%lld stime_us=%lld\n",
            (long long)(end - start), code, ru.ru_maxrss,
            (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec,
            (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec);
    fclose(report);
    return code;
}
