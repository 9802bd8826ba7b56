/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * What the traffic host's tools (udpblast, tcprr) share: the clock their
 * records use, and their common command line:
 *
 *     PROG -d IPV4 -p PORT -r RATE -n COUNT [-w DRAIN_MS] [-o RECORDS]
 *          [-s SIZE]
 *
 * A usage error prints the usage line and exits with status 2.
 */
#ifndef LAB_TRAFFIC_H
#define LAB_TRAFFIC_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 10000000u
#define MAX_DRAIN_MS 60000u

struct traffic_args {
    const char *prog;
    const char *unit;           /* what RATE counts, per second */
    unsigned long max_rate;
    /* Payload bytes of each datagram (-s), within min_size..max_size */
    unsigned long size, min_size, max_size;
    struct sockaddr_in dst;
    unsigned long rate, count, drain_ms;
    const char *out;            /* the records' file, or NULL */
};

/* CLOCK_REALTIME in nanoseconds: the records' time stamps */
static inline uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/*
 * Wait for @pfd until @until (now_ns() time), 100 ms at most so that the
 * caller looks at the clock often. Returns -1 on error, with errno.
 */
static inline int traffic_poll(struct pollfd *pfd, uint64_t now,
                               uint64_t until)
{
    uint64_t wait = until > now ? until - now : 0;
    struct timespec timeout;

    if (wait > 100000000u) {
        wait = 100000000u;
    }
    timeout.tv_sec = wait / 1000000000u;
    timeout.tv_nsec = wait % 1000000000u;
    if (ppoll(pfd, 1, &timeout, NULL) < 0 && errno != EINTR) {
        return -1;
    }
    return 0;
}

static inline void traffic_usage(const struct traffic_args *a)
{
    fprintf(stderr,
            "usage: %s -d IPV4 -p PORT -r RATE -n COUNT [-w DRAIN_MS]"
            " [-o RECORDS] [-s SIZE]\n"
            "  RATE 1..%lu %s/s, COUNT 1..%u, DRAIN_MS 0..%u (default %lu),"
            " SIZE %lu..%lu bytes (default %lu)\n",
            a->prog, a->max_rate, a->unit, MAX_COUNT, MAX_DRAIN_MS,
            a->drain_ms, a->min_size, a->max_size, a->size);
    exit(2);
}

static inline unsigned long traffic_num(const struct traffic_args *a,
                                        const char *s, unsigned long lo,
                                        unsigned long hi)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "%s: '%s' is not a number in %lu..%lu\n",
                a->prog, s, lo, hi);
        traffic_usage(a);
    }
    return v;
}

/* Fill @a from the command line; @a->drain_ms holds the default */
static inline void traffic_parse(struct traffic_args *a, int argc,
                                 char **argv)
{
    int have_dst = 0, opt;

    a->dst.sin_family = AF_INET;
    while ((opt = getopt(argc, argv, "d:p:r:n:w:o:s:")) != -1) {
        switch (opt) {
        case 'd':
            if (inet_pton(AF_INET, optarg, &a->dst.sin_addr) != 1) {
                traffic_usage(a);
            }
            have_dst = 1;
            break;
        case 'p':
            a->dst.sin_port = htons(traffic_num(a, optarg, 1, 65535));
            break;
        case 'r':
            a->rate = traffic_num(a, optarg, 1, a->max_rate);
            break;
        case 'n':
            a->count = traffic_num(a, optarg, 1, MAX_COUNT);
            break;
        case 'w':
            a->drain_ms = traffic_num(a, optarg, 0, MAX_DRAIN_MS);
            break;
        case 'o':
            a->out = optarg;
            break;
        case 's':
            a->size = traffic_num(a, optarg, a->min_size, a->max_size);
            break;
        default:
            traffic_usage(a);
        }
    }
    if (!have_dst || !a->dst.sin_port || !a->rate || !a->count ||
        optind != argc) {
        traffic_usage(a);
    }
}

#endif
