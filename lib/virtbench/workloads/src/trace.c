/* trace: a traced unit of work that exports its span as OpenTelemetry does, over OTLP/HTTP.
 *
 * Usage: trace ADDR PORT TRACEPARENT
 *
 * TRACEPARENT is a W3C trace context ("00-<32 hex trace id>-<16 hex parent span id>-01"),
 * as a caller that started the trace hands it on. The program does a small unit of work (a
 * hash loop), then sends one span of that work, a child of the caller's span in the same
 * trace, to the OTLP/HTTP receiver at ADDR:PORT: POST /v1/traces with the JSON encoding of
 * an ExportTraceServiceRequest (resource service.name "virtbench-trace", scope
 * "virtbench", the span "vb-work" of kind internal with its start and end in Unix ns).
 *
 * Prints "VB-RESULT workload=trace status=<HTTP status> span_id=<16 hex>
 * trace_id=<32 hex> elapsed_ns=<work>" and exits 0 when the receiver answered 2xx; exit 1
 * when it could not connect or the receiver refused; exit 2 on bad arguments. It needs
 * sockets that connect: it is not built for WASI preview 1, which has none.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int is_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    return 1;
}

static uint64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int send_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, buf, len, 0);
        if (n <= 0) return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: trace ADDR PORT TRACEPARENT\n");
        return 2;
    }
    const char *addr = argv[1], *tp = argv[3];
    long port = strtol(argv[2], NULL, 10);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (port < 1 || port > 65535 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "trace: bad address %s:%s\n", addr, argv[2]);
        return 2;
    }
    /* 00-<trace id: 32 hex>-<parent span id: 16 hex>-<flags: 2 hex> */
    if (strlen(tp) != 55 || strncmp(tp, "00-", 3) != 0 || tp[35] != '-' || tp[52] != '-' ||
        !is_hex(tp + 3, 32) || !is_hex(tp + 36, 16)) {
        fprintf(stderr, "trace: not a W3C traceparent: %s\n", tp);
        return 2;
    }
    char trace_id[33], parent_id[17], span_id[17];
    memcpy(trace_id, tp + 3, 32);
    trace_id[32] = '\0';
    memcpy(parent_id, tp + 36, 16);
    parent_id[16] = '\0';

    uint64_t start = now_ns(CLOCK_REALTIME), t0 = now_ns(CLOCK_MONOTONIC);
    uint64_t h = 1469598103934665603u;  /* the unit of work: FNV-1a over a counter */
    for (uint64_t i = 0; i < 2000000u; i++) h = (h ^ i) * 1099511628211u;
    uint64_t elapsed = now_ns(CLOCK_MONOTONIC) - t0, end = now_ns(CLOCK_REALTIME);
    /* a span id of its own, never zero: from the work's hash, the clock and the pid */
    uint64_t sid = (h ^ start ^ ((uint64_t)getpid() << 32)) | 1u;
    snprintf(span_id, sizeof span_id, "%016" PRIx64, sid);

    char body[1024];
    int blen = snprintf(body, sizeof body,
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"stringValue\":\"virtbench-trace\"}}]},\"scopeSpans\":[{\"scope\":"
        "{\"name\":\"virtbench\"},\"spans\":[{\"traceId\":\"%s\",\"spanId\":\"%s\","
        "\"parentSpanId\":\"%s\",\"name\":\"vb-work\",\"kind\":1,"
        "\"startTimeUnixNano\":\"%" PRIu64 "\",\"endTimeUnixNano\":\"%" PRIu64 "\","
        "\"attributes\":[{\"key\":\"vb.checksum\",\"value\":{\"stringValue\":"
        "\"%016" PRIx64 "\"}}]}]}]}]}",
        trace_id, span_id, parent_id, start, end, h);
    char head[256];
    int hlen = snprintf(head, sizeof head,
        "POST /v1/traces HTTP/1.1\r\nHost: %s:%ld\r\nContent-Type: application/json\r\n"
        "Content-Length: %d\r\nConnection: close\r\n\r\n", addr, port, blen);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("trace: connect");
        return 1;
    }
    if (send_all(fd, head, (size_t)hlen) != 0 || send_all(fd, body, (size_t)blen) != 0) {
        perror("trace: send");
        return 1;
    }
    char reply[512];
    size_t got = 0;
    ssize_t n;
    /* up to the end of the reply's headers: a forwarder may not pass the receiver's close on */
    while (got < sizeof reply - 1 && (n = recv(fd, reply + got, sizeof reply - 1 - got, 0)) > 0) {
        got += (size_t)n;
        reply[got] = '\0';
        if (strstr(reply, "\r\n\r\n") != NULL) break;
    }
    reply[got] = '\0';
    close(fd);
    int status = 0;
    if (sscanf(reply, "HTTP/1.%*d %d", &status) != 1) status = 0;
    printf("VB-RESULT workload=trace status=%d span_id=%s trace_id=%s elapsed_ns=%" PRIu64 "\n",
           status, span_id, trace_id, elapsed);
    fflush(stdout);
    return status >= 200 && status < 300 ? 0 : 1;
}
