/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * tcprr: request/response over one TCP connection at a fixed rate, to an
 * echo server. Sends a small sequence-numbered, timestamped message every
 * 1/RATE seconds without waiting for the answers, matches each answer to
 * its message, and writes one record per message. Bounded: COUNT
 * messages, then DRAIN milliseconds for late answers, then exit.
 *
 * Records (text, one line per message, in sequence order):
 *     seq send_ns answer_ns
 * times are CLOCK_REALTIME nanoseconds (answer_ns 0: never answered).
 * A one-line JSON summary goes to stdout: messages sent and answered, the
 * longest round trip (the longest stall a request saw), the median round
 * trip, the longest gap between answers, and the connection's
 * retransmissions (TCP_INFO: segments this side sent again).
 *
 * Exit: 0 done (whatever was late), 1 runtime error, 2 usage.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include "traffic.h"

#define MAGIC 0x6e706c74u       /* "nplt" */
#define MAX_RATE 100000u

struct msg {
    uint32_t magic;
    uint32_t pad;
    uint64_t seq;
    uint64_t send_ns;
    uint64_t pad2;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    struct traffic_args a = {
        .prog = "tcprr", .unit = "messages", .max_rate = MAX_RATE,
        .drain_ms = 3000, .size = sizeof(struct msg),
        .min_size = sizeof(struct msg), .max_size = sizeof(struct msg),
    };
    uint64_t *send_ns, *answer_ns, *rtts;
    uint64_t start, interval, end, next, sent = 0, answered = 0;
    uint64_t last_answer = 0, max_gap = 0, max_rtt = 0;
    /* Bytes queued for sending, and the partial answer being read */
    static char outq[1 << 20], inbuf[sizeof(struct msg)];
    size_t outlen = 0, inlen = 0;
    struct tcp_info ti;
    socklen_t tilen = sizeof(ti);
    int fd, one = 1;

    traffic_parse(&a, argc, argv);
    send_ns = calloc(a.count, sizeof(*send_ns));
    answer_ns = calloc(a.count, sizeof(*answer_ns));
    rtts = calloc(a.count, sizeof(*rtts));
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (!send_ns || !answer_ns || !rtts || fd < 0 ||
        connect(fd, (void *)&a.dst, sizeof(a.dst)) < 0) {
        perror("tcprr");
        return 1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, O_NONBLOCK);

    interval = 1000000000u / a.rate;
    start = now_ns();
    next = start;
    end = start + a.count * interval + a.drain_ms * 1000000u;
    for (;;) {
        uint64_t t = now_ns();
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t n;

        while (sent < a.count && t >= next) {
            struct msg m = { .magic = MAGIC, .seq = sent, .send_ns = t };

            if (outlen + sizeof(m) > sizeof(outq)) {
                fprintf(stderr, "tcprr: %zu bytes unsent\n", outlen);
                return 1;
            }
            memcpy(outq + outlen, &m, sizeof(m));
            outlen += sizeof(m);
            send_ns[sent++] = t;
            next += interval;
        }
        if (outlen) {
            n = send(fd, outq, outlen, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                memmove(outq, outq + n, outlen - n);
                outlen -= n;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                perror("tcprr: send");
                return 1;
            }
            if (outlen) {
                pfd.events |= POLLOUT;
            }
        }
        if (t >= end) {
            break;
        }
        if (traffic_poll(&pfd, t, sent < a.count ? next : end) < 0) {
            perror("tcprr: ppoll");
            return 1;
        }
        while ((n = recv(fd, inbuf + inlen, sizeof(inbuf) - inlen,
                         MSG_DONTWAIT)) > 0) {
            struct msg m;
            uint64_t r;

            inlen += n;
            if (inlen < sizeof(inbuf)) {
                continue;
            }
            inlen = 0;
            memcpy(&m, inbuf, sizeof(m));
            if (m.magic != MAGIC || m.seq >= sent || answer_ns[m.seq]) {
                fprintf(stderr, "tcprr: unexpected answer\n");
                return 1;
            }
            r = now_ns();
            answer_ns[m.seq] = r;
            rtts[answered++] = r - send_ns[m.seq];
            if (r - send_ns[m.seq] > max_rtt) {
                max_rtt = r - send_ns[m.seq];
            }
            if (last_answer && r - last_answer > max_gap) {
                max_gap = r - last_answer;
            }
            last_answer = r;
        }
        if (n == 0) {
            fprintf(stderr, "tcprr: the server closed the connection\n");
            return 1;
        }
    }
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tilen) < 0) {
        perror("tcprr: TCP_INFO");
        return 1;
    }

    if (a.out) {
        FILE *f = fopen(a.out, "w");

        if (!f) {
            perror(a.out);
            return 1;
        }
        for (uint64_t i = 0; i < sent; i++) {
            fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", i,
                    send_ns[i], answer_ns[i]);
        }
        if (fclose(f)) {
            perror(a.out);
            return 1;
        }
    }
    qsort(rtts, answered, sizeof(*rtts), cmp_u64);
    printf("{\"sent\": %" PRIu64 ", \"answered\": %" PRIu64
           ", \"longest_rtt_ms\": %.3f, \"median_rtt_ms\": %.3f"
           ", \"longest_gap_ms\": %.3f, \"retransmissions\": %u"
           ", \"start_ns\": %" PRIu64 ", \"rate\": %lu}\n",
           sent, answered, max_rtt / 1e6,
           answered ? rtts[answered / 2] / 1e6 : 0.0, max_gap / 1e6,
           ti.tcpi_total_retrans, start, a.rate);
    return 0;
}
