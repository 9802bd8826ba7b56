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
 * A destination address ending in .255, the segment's broadcast address,
 * reaches every host of the segment: the datagrams go out with
 * SO_BROADCAST, and the echoes come back from the guest's own address.
 *
 * Exit: 0 done (whatever was lost), 1 runtime error, 2 usage.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include "traffic.h"

#define MAGIC 0x6e706c62u       /* "nplb" */
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

int main(int argc, char **argv)
{
    struct traffic_args a = {
        .prog = "udpblast", .unit = "datagrams", .max_rate = MAX_RATE,
        .drain_ms = 2000, .size = PAYLOAD, .min_size = sizeof(struct wire),
        .max_size = PAYLOAD,
    };
    struct rec *recs;
    uint64_t start, interval, end, next, sent = 0, echoed = 0, dups = 0;
    uint64_t due = 0, send_failed = 0;
    uint64_t reordered = 0, max_seq = 0, last_echo = 0, max_gap = 0;
    uint64_t gap_from = 0;
    int fd, opt;
    bool broadcast;
    char buf[2048];

    traffic_parse(&a, argc, argv);
    broadcast = (ntohl(a.dst.sin_addr.s_addr) & 0xff) == 0xff;
    recs = calloc(a.count, sizeof(*recs));
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    opt = 1;
    if (!recs || fd < 0 ||
        (broadcast ?
         setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &opt, sizeof(opt)) :
         connect(fd, (void *)&a.dst, sizeof(a.dst))) < 0) {
        perror("udpblast");
        return 1;
    }
    opt = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opt, sizeof(opt));

    interval = 1000000000u / a.rate;
    start = now_ns();
    next = start;
    end = start + a.count * interval + a.drain_ms * 1000000u;
    for (;;) {
        uint64_t t = now_ns();
        struct pollfd pfd = { .fd = fd, .events = POLLIN };

        while (due < a.count && t >= next) {
            struct wire w = { .magic = MAGIC, .seq = sent, .send_ns = t };
            char pkt[PAYLOAD] = { 0 };

            memcpy(pkt, &w, sizeof(w));
            if (sendto(fd, pkt, a.size, MSG_DONTWAIT, (void *)&a.dst,
                       sizeof(a.dst)) == (ssize_t)a.size) {
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
        if (traffic_poll(&pfd, t, due < a.count ? next : end) < 0) {
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

    if (a.out) {
        FILE *f = fopen(a.out, "w");

        if (!f) {
            perror(a.out);
            return 1;
        }
        for (uint64_t i = 0; i < sent; i++) {
            fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %u\n", i,
                    recs[i].send_ns, recs[i].echo_ns, recs[i].echoes);
        }
        if (fclose(f)) {
            perror(a.out);
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
           gap_from, start, a.rate);
    return 0;
}
