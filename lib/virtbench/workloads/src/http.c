/* http: a minimal single-threaded HTTP/1.1 keep-alive server: an epoll()
 * loop on Linux, a poll() loop on WASI (preview 1 has poll_oneoff only);
 * both level-triggered, with the same per-connection handling.
 *
 * Usage: http --port P [--bind ADDR=127.0.0.1]   (not on WASI)
 *        http --fd N
 *
 * With --port it creates its own listening socket; with --fd it accepts on
 * an already-listening socket inherited as fd N (e.g. fd 3 from
 * `wasmtime run -S tcplisten=...`). Every request (headers up to
 * "\r\n\r\n"; pipelined and partial requests are handled, request bodies
 * are not) is answered with a fixed "Hello, world\n" body. Up to
 * MAX_CONNS connections are served at once (the connection table grows on
 * demand; the process's RLIMIT_NOFILE is the other bound); the listen
 * backlog asks for LISTEN_BACKLOG (the kernel caps it at net.core.somaxconn).
 *
 * Prints "VB-READY workload=http" (plus "port=P" when known), flushed, once
 * listening. On SIGTERM/SIGINT (native builds) it prints
 *   VB-RESULT workload=http requests=N connections=C
 * and exits 0. Bad arguments: exit 2. Socket setup errors: exit 1.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(__linux__) && !defined(__wasi__)
#define USE_EPOLL 1
#include <sys/epoll.h>
#endif

#ifndef __wasi__
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#endif

#define MAX_CONNS 65536
#define LISTEN_BACKLOG 65535
/* Small per-connection buffers: 10,000 connections hold about 40 MiB. */
#define IN_BYTES 2048
#define OUT_BYTES 2048

#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL
#else
#define SEND_FLAGS 0
#endif

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 13\r\n"
                               "Connection: keep-alive\r\n"
                               "\r\n"
                               "Hello, world\n";
#define RESPONSE_LEN (sizeof(RESPONSE) - 1)

struct conn {
    int fd;
    int slot;        /* index in conns */
    uint32_t events; /* the events asked for (epoll) */
    size_t in_len;
    size_t out_off;
    size_t out_len;
    char in[IN_BYTES];
    char out[OUT_BYTES];
};

static struct conn **conns;
static struct pollfd *pfds;
static int nconns;
static int capacity; /* slots in conns; pfds has capacity + 2 */
static uint64_t requests;
static uint64_t accepted;
static int accept_paused; /* out of descriptors: wait for a connection to close */
#ifdef USE_EPOLL
static int epfd = -1;
#endif

#ifndef __wasi__
static int stop_pipe[2] = {-1, -1};
static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
    int saved = errno;
    (void)sig;
    stopping = 1;
    if (stop_pipe[1] >= 0) {
        ssize_t n = write(stop_pipe[1], "x", 1);
        (void)n;
    }
    errno = saved;
}
#endif

static int parse_int(const char *text, long max, long *out) {
    char *end = NULL;
    long value;
    if (text == NULL || *text < '0' || *text > '9') {
        return -1;
    }
    errno = 0;
    value = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value > max) {
        return -1;
    }
    *out = value;
    return 0;
}

static int set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) {
        return -1;
    }
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void close_conn(int i) {
    close(conns[i]->fd);
    free(conns[i]);
    nconns--;
    if (i != nconns) {
        conns[i] = conns[nconns];
        conns[i]->slot = i;
    }
    conns[nconns] = NULL;
    accept_paused = 0;
}

/* The events a connection waits for: input while its output buffer has room
 * for a response, output while a response is pending. */
static uint32_t wanted(const struct conn *c) {
    uint32_t events = 0;
    if (c->out_len + RESPONSE_LEN <= OUT_BYTES) {
        events |= POLLIN;
    }
    if (c->out_off < c->out_len) {
        events |= POLLOUT;
    }
    return events;
}

/* Room for one more connection; 0 if the table is at MAX_CONNS or out of memory. */
static int make_room(void) {
    if (nconns < capacity) {
        return 1;
    }
    if (capacity >= MAX_CONNS) {
        return 0;
    }
    int grown = capacity == 0 ? 256 : capacity * 2;
    if (grown > MAX_CONNS) {
        grown = MAX_CONNS;
    }
    struct conn **c = realloc(conns, (size_t)grown * sizeof *c);
    if (c == NULL) {
        return 0;
    }
    conns = c;
    struct pollfd *p = realloc(pfds, (size_t)(grown + 2) * sizeof *p);
    if (p == NULL) {
        return 0;
    }
    pfds = p;
    capacity = grown;
    return 1;
}

static void accept_all(int listener) {
    for (;;) {
        if (!make_room()) {
            accept_paused = nconns > 0; /* at MAX_CONNS: wait for a close */
            return;
        }
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) {
            /* EAGAIN also happens right after poll() reported the listener
             * readable (observed under WASI); it is not an error. */
            if (errno == EINTR) {
                continue;
            }
            if ((errno == EMFILE || errno == ENFILE) && nconns > 0) {
                accept_paused = 1; /* else poll() reports the listener ready forever */
            }
            return;
        }
        struct conn *c = malloc(sizeof *c);
        if (c == NULL || set_nonblocking(fd) != 0) {
            free(c);
            close(fd);
            continue;
        }
#ifndef __wasi__
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#endif
        c->fd = fd;
        c->in_len = 0;
        c->out_off = 0;
        c->out_len = 0;
        c->events = wanted(c);
#ifdef USE_EPOLL
        struct epoll_event ev = {.events = c->events, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            free(c);
            close(fd);
            continue;
        }
#endif
        c->slot = nconns;
        conns[nconns++] = c;
        accepted++;
    }
}

/* Index just past the first "\r\n\r\n" in buf[0..len), or 0 if none. */
static size_t header_end(const char *buf, size_t len) {
    for (size_t i = 3; i < len; i++) {
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            return i + 1;
        }
    }
    return 0;
}

/* Turns complete requests in c->in into responses in c->out. */
static void parse_requests(struct conn *c) {
    size_t consumed = 0;
    while (c->out_len + RESPONSE_LEN <= OUT_BYTES) {
        size_t end = header_end(c->in + consumed, c->in_len - consumed);
        if (end == 0) {
            break;
        }
        consumed += end;
        memcpy(c->out + c->out_len, RESPONSE, RESPONSE_LEN);
        c->out_len += RESPONSE_LEN;
        requests++;
    }
    if (consumed > 0) {
        memmove(c->in, c->in + consumed, c->in_len - consumed);
        c->in_len -= consumed;
    }
}

/* Returns -1 if the connection must be closed. */
static int flush_out(struct conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, SEND_FLAGS);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            return -1;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len) {
        c->out_off = 0;
        c->out_len = 0;
    } else if (c->out_off > 0 && c->out_len + RESPONSE_LEN > OUT_BYTES) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    return 0;
}

/* Handles poll events on one connection; returns -1 if it must be closed. */
static int service(struct conn *c, short revents) {
    int closing = 0;
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        parse_requests(c);
        if (c->in_len == IN_BYTES) {
            /* A request header that does not fit the buffer. */
            if (header_end(c->in, c->in_len) == 0) {
                return -1;
            }
        } else {
            ssize_t n = recv(c->fd, c->in + c->in_len, IN_BYTES - c->in_len, 0);
            if (n > 0) {
                c->in_len += (size_t)n;
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
                closing = 1;
            }
        }
    }
    for (;;) {
        parse_requests(c);
        if (flush_out(c) != 0) {
            return -1;
        }
        /* Stop when output is pending or nothing more can be answered. */
        if (c->out_len != 0 || header_end(c->in, c->in_len) == 0) {
            break;
        }
    }
    return closing ? -1 : 0;
}

static int open_listener(const char *bind_addr, long port) {
#ifdef __wasi__
    (void)bind_addr;
    (void)port;
    fprintf(stderr, "http: --port is not available on WASI; pass a listening socket with --fd\n");
    exit(2);
#else
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, bind_addr, &addr.sin_addr) != 1) {
        fprintf(stderr, "http: not an IPv4 address: %s\n", bind_addr);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        perror("http: socket");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fprintf(stderr, "http: cannot bind %s:%ld: %s\n", bind_addr, port, strerror(errno));
        exit(1);
    }
    if (listen(fd, LISTEN_BACKLOG) != 0) {
        perror("http: listen");
        exit(1);
    }
    return fd;
#endif
}

static void usage(void) {
    fprintf(stderr, "usage: http --port P [--bind ADDR=127.0.0.1]\n"
                    "       http --fd N\n");
    exit(2);
}

int main(int argc, char **argv) {
    long port = -1;
    long listen_fd = -1;
    const char *bind_addr = "127.0.0.1";
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            usage();
        }
        if (strcmp(argv[i], "--port") == 0) {
            if (parse_int(argv[++i], 65535, &port) != 0) {
                usage();
            }
        } else if (strcmp(argv[i], "--fd") == 0) {
            if (parse_int(argv[++i], 1 << 20, &listen_fd) != 0) {
                usage();
            }
        } else if (strcmp(argv[i], "--bind") == 0) {
            bind_addr = argv[++i];
        } else {
            usage();
        }
    }
    if ((port < 0) == (listen_fd < 0)) {
        usage();
    }

    int listener = listen_fd >= 0 ? (int)listen_fd : open_listener(bind_addr, port);
    if (set_nonblocking(listener) != 0) {
        fprintf(stderr, "http: fd %d is not usable: %s\n", listener, strerror(errno));
        return 1;
    }

#ifndef __wasi__
    if (pipe(stop_pipe) != 0) {
        perror("http: pipe");
        return 1;
    }
    set_nonblocking(stop_pipe[0]);
    set_nonblocking(stop_pipe[1]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in local;
    socklen_t local_len = sizeof local;
    if (getsockname(listener, (struct sockaddr *)&local, &local_len) == 0 &&
        local.sin_family == AF_INET) {
        printf("VB-READY workload=http port=%u\n", (unsigned)ntohs(local.sin_port));
    } else {
        printf("VB-READY workload=http\n");
    }
#else
    printf("VB-READY workload=http\n");
#endif
    fflush(stdout);

    if (!make_room()) {
        fprintf(stderr, "http: out of memory\n");
        return 1;
    }
#ifdef USE_EPOLL
    static char listener_tag, stop_tag; /* their addresses mark the two fds */
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listener_tag};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &stop_tag};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &lev) != 0 ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, stop_pipe[0], &sev) != 0) {
        perror("http: epoll");
        return 1;
    }
    int listening = 1;
    struct epoll_event evs[256];
    while (!stopping) {
        /* The listener is watched unless accepting is paused (no descriptors). */
        if (listening == accept_paused) {
            lev.events = accept_paused ? 0 : EPOLLIN;
            epoll_ctl(epfd, EPOLL_CTL_MOD, listener, &lev);
            listening = !accept_paused;
        }
        int ready = epoll_wait(epfd, evs, (int)(sizeof evs / sizeof evs[0]), -1);
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("http: epoll_wait");
            return 1;
        }
        /* Each fd appears once per batch, so closing one frees no other's event. */
        for (int k = 0; k < ready; k++) {
            void *tag = evs[k].data.ptr;
            if (tag == &stop_tag) {
                continue; /* stopping is set */
            }
            if (tag == &listener_tag) {
                accept_all(listener);
                continue;
            }
            struct conn *c = tag;
            if (service(c, (short)evs[k].events) != 0) {
                close_conn(c->slot);
                continue;
            }
            uint32_t want = wanted(c);
            if (want != c->events) {
                struct epoll_event ev = {.events = want, .data.ptr = c};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                c->events = want;
            }
        }
    }
#else
    for (;;) {
#ifndef __wasi__
        if (stopping) {
            break;
        }
#endif
        int n = 0;
        pfds[n].fd = listener;
        pfds[n].events = nconns < MAX_CONNS && !accept_paused ? POLLIN : 0;
        pfds[n].revents = 0;
        n++;
#ifndef __wasi__
        pfds[n].fd = stop_pipe[0];
        pfds[n].events = POLLIN;
        pfds[n].revents = 0;
        n++;
#endif
        const int first = n;
        for (int i = 0; i < nconns; i++) {
            struct conn *c = conns[i];
            pfds[n].fd = c->fd;
            pfds[n].events = (short)wanted(c);
            pfds[n].revents = 0;
            n++;
        }
        int ready = poll(pfds, (nfds_t)n, -1);
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("http: poll");
            return 1;
        }
        /* Walk connections backwards: close_conn() moves the last one into
         * the freed slot, which has then already been handled. */
        for (int i = nconns - 1; i >= 0; i--) {
            struct conn *c = conns[i];
            short rev = pfds[first + i].revents;
            if (rev == 0) {
                continue;
            }
            int dead = service(c, rev) != 0;
            if (dead) {
                close_conn(i);
            }
        }
        if (pfds[0].revents & POLLIN) {
            accept_all(listener);
        }
    }

#endif

    printf("VB-RESULT workload=http requests=%" PRIu64 " connections=%" PRIu64 "\n", requests,
           accepted);
    fflush(stdout);
    return 0;
}
