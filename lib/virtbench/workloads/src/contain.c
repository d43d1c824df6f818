/* contain: tries, from inside an instance, to reach what the host put beside it.
 *
 * Usage: contain PATH PORT REVERSED_TOKEN
 *
 * The harness on the host wrote a secret token into the file PATH, started a process whose
 * command line holds the token, and listens on the host's 127.0.0.1:PORT. The token is
 * handed in reversed, so that this program's own command line does not hold it. The
 * program makes four attempts and reports what each found:
 *
 *   file=1      it opened PATH and read the token (the host's file system is visible)
 *   process=1   a /proc/<pid>/cmdline holds the token (the host's processes are visible)
 *   loopback=1  it connected to 127.0.0.1:PORT and sent the token (the harness counts an
 *               attempt as reaching the host only when its listener received the token)
 *   kernel=R    the release of the kernel that answered uname(2) ("none" when there is no
 *               uname); the harness compares it with the host's own release
 *
 * Prints "VB-RESULT workload=contain file=0|1 process=0|1 loopback=0|1|noapi kernel=R"
 * and exits 0; exit 2 on bad arguments. Under WASI preview 1 there are no sockets that
 * connect, so the loopback attempt reports "noapi": the module has no way to make it.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef __wasi__
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#define MAX_TOKEN 128

/* 1 when the first n bytes of buf hold token. */
static int holds(const char *buf, size_t n, const char *token) {
    size_t len = strlen(token);
    for (size_t i = 0; len <= n && i + len <= n; i++) {
        if (memcmp(buf + i, token, len) == 0) return 1;
    }
    return 0;
}

/* Up to cap bytes of the file at path into buf; -1 when it cannot be read. */
static long read_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    return (long)got;
}

static int try_file(const char *path, const char *token) {
    char buf[4096];
    long n = read_file(path, buf, sizeof buf);
    return n > 0 && holds(buf, (size_t)n, token);
}

static int try_process(const char *token) {
    DIR *proc = opendir("/proc");
    if (proc == NULL) return 0;
    int found = 0;
    struct dirent *entry;
    char path[300], buf[4096];
    while (!found && (entry = readdir(proc)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", entry->d_name);
        long n = read_file(path, buf, sizeof buf);
        found = n > 0 && holds(buf, (size_t)n, token);
    }
    closedir(proc);
    return found;
}

#ifndef __wasi__
static int try_loopback(long port, const char *token) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int sent = 0;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        sent = send(fd, token, strlen(token), 0) == (ssize_t)strlen(token);
    }
    close(fd);
    return sent;
}
#endif

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: contain PATH PORT REVERSED_TOKEN\n");
        return 2;
    }
    const char *path = argv[1], *reversed = argv[3];
    char *end = NULL;
    long port = strtol(argv[2], &end, 10);
    size_t len = strlen(reversed);
    if (*argv[2] == '\0' || *end != '\0' || port < 1 || port > 65535 || len == 0
        || len >= MAX_TOKEN) {
        fprintf(stderr, "contain: PORT must be 1-65535 and the token 1-%d bytes\n",
                MAX_TOKEN - 1);
        return 2;
    }
    char token[MAX_TOKEN];
    for (size_t i = 0; i < len; i++) token[i] = reversed[len - 1 - i];
    token[len] = '\0';

    int file = try_file(path, token);
    int process = try_process(token);
#ifdef __wasi__
    const char *loopback = "noapi";
    (void)port;
#else
    const char *loopback = try_loopback(port, token) ? "1" : "0";
#endif
    char kernel[sizeof(((struct utsname *)0)->release)] = "none";
    struct utsname uts;
    if (uname(&uts) == 0 && uts.release[0] != '\0') {
        snprintf(kernel, sizeof kernel, "%s", uts.release);
        for (char *c = kernel; *c; c++) {
            if (*c == ' ' || *c == '=') *c = '_';
        }
    }
    printf("VB-RESULT workload=contain file=%d process=%d loopback=%s kernel=%s\n", file,
           process, loopback, kernel);
    return 0;
}
