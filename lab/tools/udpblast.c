/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * udpblast: send sequence-numbered, timestamped UDP datagrams at a fixed
 * rate to an echo responder, receive the echoes, and write one record per
 * datagram. Bounded: COUNT datagrams, then DRAIN milliseconds for late
 * echoes, then exit.
 *
 * Records (text, one line per datagram, in sequence order):
 *     seq send_ns echo_ns echoes
 * times are CLOCK_REALTIME nanoseconds (echo_ns 0: never echoed; echoes:
 * how many echoes of that datagram arrived). A datagram the local socket
 * refused (send failed) never left: it gets no sequence number and no
 * record, and is counted as send_failed. A one-line JSON summary goes to
 * stdout.
 *
 * Exit: 0 done (whatever was lost), 1 runtime error, 2 usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x6e706c62u       /* "nplb" */
#define MAX_COUNT 10000000u
#define MAX_RATE 1000000u
#define PAYLOAD 64

struct wire {
    uint32_t magic;
    uint32_t pad;
    uint64_t seq;
    uint64_t send_ns;
};

struct rec {
    uint64_t send_ns;
    uint64_t echo_ns;
    uint32_t echoes;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: udpblast -d IPV4 -p PORT -r RATE -n COUNT [-w DRAIN_MS]"
            " [-o RECORDS]\n"
            "  RATE 1..%u datagrams/s, COUNT 1..%u, DRAIN_MS 0..60000"
            " (default 2000)\n", MAX_RATE, MAX_COUNT);
    exit(2);
}

static unsigned long num_arg(const char *s, unsigned long lo, unsigned long hi)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "udpblast: '%s' is not a number in %lu..%lu\n",
                s, lo, hi);
        usage();
    }
    return v;
}

int main(int argc, char **argv)
{
    struct sockaddr_in dst = { .sin_family = AF_INET };
    const char *out = NULL;
    unsigned long rate = 0, count = 0, drain_ms = 2000;
    struct rec *recs;
    uint64_t start, interval, end, next, sent = 0, echoed = 0, dups = 0;
    uint64_t due = 0, send_failed = 0;
    uint64_t reordered = 0, max_seq = 0, last_echo = 0, max_gap = 0;
    uint64_t gap_from = 0;
    int have_dst = 0, fd, opt;
    char buf[2048];

    while ((opt = getopt(argc, argv, "d:p:r:n:w:o:")) != -1) {
        switch (opt) {
        case 'd':
            if (inet_pton(AF_INET, optarg, &dst.sin_addr) != 1) {
                usage();
            }
            have_dst = 1;
            break;
        case 'p':
            dst.sin_port = htons(num_arg(optarg, 1, 65535));
            break;
        case 'r':
            rate = num_arg(optarg, 1, MAX_RATE);
            break;
        case 'n':
            count = num_arg(optarg, 1, MAX_COUNT);
            break;
        case 'w':
            drain_ms = num_arg(optarg, 0, 60000);
            break;
        case 'o':
            out = optarg;
            break;
        default:
            usage();
        }
    }
    if (!have_dst || !dst.sin_port || !rate || !count || optind != argc) {
        usage();
    }

    recs = calloc(count, sizeof(*recs));
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (!recs || fd < 0 || connect(fd, (void *)&dst, sizeof(dst)) < 0) {
        perror("udpblast");
        return 1;
    }
    opt = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opt, sizeof(opt));

    interval = 1000000000u / rate;
    start = now_ns();
    next = start;
    end = start + count * interval + drain_ms * 1000000u;
    for (;;) {
        uint64_t t = now_ns();
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        struct timespec timeout;
        uint64_t wait;

        while (due < count && t >= next) {
            struct wire w = { .magic = MAGIC, .seq = sent, .send_ns = t };
            char pkt[PAYLOAD] = { 0 };

            memcpy(pkt, &w, sizeof(w));
            if (send(fd, pkt, sizeof(pkt), MSG_DONTWAIT) == sizeof(pkt)) {
                recs[sent++].send_ns = t;
            } else {
                send_failed++;
            }
            due++;
            next += interval;
        }
        if (t >= end) {
            break;
        }
        wait = due < count ? next - t : end - t;
        if (wait > 100000000u) {
            wait = 100000000u;
        }
        timeout.tv_sec = wait / 1000000000u;
        timeout.tv_nsec = wait % 1000000000u;
        if (ppoll(&pfd, 1, &timeout, NULL) < 0 && errno != EINTR) {
            perror("udpblast: ppoll");
            return 1;
        }
        for (;;) {
            ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
            struct wire w;
            uint64_t r;

            if (n < 0) {
                break;
            }
            if ((size_t)n < sizeof(w)) {
                continue;
            }
            memcpy(&w, buf, sizeof(w));
            if (w.magic != MAGIC || w.seq >= sent) {
                continue;
            }
            r = now_ns();
            if (recs[w.seq].echoes++) {
                dups++;
                continue;
            }
            recs[w.seq].echo_ns = r;
            if (echoed && w.seq < max_seq) {
                reordered++;
            }
            if (w.seq > max_seq) {
                max_seq = w.seq;
            }
            if (last_echo && r - last_echo > max_gap) {
                max_gap = r - last_echo;
                gap_from = last_echo;
            }
            last_echo = r;
            echoed++;
        }
    }

    if (out) {
        FILE *f = fopen(out, "w");

        if (!f) {
            perror(out);
            return 1;
        }
        for (uint64_t i = 0; i < sent; i++) {
            fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %u\n", i,
                    recs[i].send_ns, recs[i].echo_ns, recs[i].echoes);
        }
        if (fclose(f)) {
            perror(out);
            return 1;
        }
    }
    printf("{\"sent\": %" PRIu64 ", \"echoed\": %" PRIu64
           ", \"lost\": %" PRIu64 ", \"reordered\": %" PRIu64
           ", \"duplicated\": %" PRIu64 ", \"send_failed\": %" PRIu64
           ", \"longest_gap_ms\": %.3f"
           ", \"longest_gap_from_ns\": %" PRIu64 ", \"start_ns\": %" PRIu64
           ", \"rate\": %lu}\n",
           sent, echoed, sent - echoed, reordered, dups, send_failed,
           max_gap / 1e6,
           gap_from, start, rate);
    return 0;
}
