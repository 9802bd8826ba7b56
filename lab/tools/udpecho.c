/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * udpecho: the guest's echo responder. Sends every UDP datagram received
 * on PORT straight back to its sender. A datagram that starts with "STAT"
 * is a question instead: the answer (also printed on stdout, the serial
 * console) is one line of the guest's own counters, for the lab to tell
 * where datagrams were lost:
 *
 *   udpecho rx=N tx=N txfail=N dupes=N rcvbuf=BYTES udp_in=N
 *   udp_rcvbuf_errors=N udp_in_errors=N udp_sndbuf_errors=N tcp_retrans=N
 *   nic_rx=N nic_drop=N
 *
 * rx, tx, txfail: datagrams this program received, echoed, failed to
 * echo; dupes: datagrams of udpblast (by their magic) whose sequence
 * number it had received before, since its last answer to "STAT";
 * rcvbuf: its socket's receive buffer as the kernel set it; udp_*
 * and tcp_retrans: /proc/net/snmp; nic_*: eth0's rx_packets and
 * rx_dropped.
 *
 * RCVBUF: the receive buffer to ask for, in bytes (0 or absent: the
 * kernel's default, net.core.rmem_default).
 *
 * Exit: 1 runtime error, 2 usage; it never ends by itself.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BLAST_MAGIC 0x6e706c62u  /* udpblast's, host byte order */
#define MAX_SEQ (1u << 24)        /* as many as udpblast sends at most */

/* The value under NAME in the "PROTO:" lines of /proc/net/snmp, or "?" */
static void snmp_field(const char *proto, const char *name, char *out,
                       size_t len)
{
    char head[1024], vals[1024], *h, *v, *hs, *vs;
    FILE *f = fopen("/proc/net/snmp", "r");

    snprintf(out, len, "?");
    if (!f) {
        return;
    }
    while (fgets(head, sizeof(head), f) && fgets(vals, sizeof(vals), f)) {
        if (strncmp(head, proto, strlen(proto)) ||
            head[strlen(proto)] != ':') {
            continue;
        }
        h = strtok_r(head, " \n", &hs);
        v = strtok_r(vals, " \n", &vs);
        while (h && v) {
            if (!strcmp(h, name)) {
                snprintf(out, len, "%s", v);
            }
            h = strtok_r(NULL, " \n", &hs);
            v = strtok_r(NULL, " \n", &vs);
        }
    }
    fclose(f);
}

static void sysfs_value(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");

    snprintf(out, len, "?");
    if (f) {
        if (fscanf(f, "%31s", out) != 1) {
            snprintf(out, len, "?");
        }
        fclose(f);
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in addr = { .sin_family = AF_INET };
    unsigned long rx = 0, tx = 0, txfail = 0, dupes = 0;
    static uint8_t seen[MAX_SEQ / 8];
    char *end;
    long port, rcvbuf = 0;
    int fd;

    if (argc < 2 || argc > 3 ||
        (port = strtol(argv[1], &end, 10)) < 1 || port > 65535 || *end ||
        (argc == 3 &&
         ((rcvbuf = strtol(argv[2], &end, 10)) < 0 || *end ||
          rcvbuf > (1L << 30)))) {
        fprintf(stderr, "usage: udpecho PORT [RCVBUF]\n");
        return 2;
    }
    addr.sin_port = htons(port);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (void *)&addr, sizeof(addr)) < 0) {
        perror("udpecho");
        return 1;
    }
    if (rcvbuf) {
        int size = rcvbuf;

        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
    printf("udpecho: listening on %ld\n", port);
    fflush(stdout);
    for (;;) {
        struct sockaddr_in from;
        socklen_t len = sizeof(from);
        char buf[2048];
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (void *)&from, &len);

        if (n < 0) {
            continue;
        }
        if (n >= 4 && !memcmp(buf, "STAT", 4)) {
            char in[32], rcverr[32], inerr[32], snderr[32], retrans[32];
            char nic_rx[32], nic_drop[32], line[512];
            int size = 0;
            socklen_t slen = sizeof(size);

            getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, &slen);
            snmp_field("Udp", "InDatagrams", in, sizeof(in));
            snmp_field("Udp", "RcvbufErrors", rcverr, sizeof(rcverr));
            snmp_field("Udp", "InErrors", inerr, sizeof(inerr));
            snmp_field("Udp", "SndbufErrors", snderr, sizeof(snderr));
            snmp_field("Tcp", "RetransSegs", retrans, sizeof(retrans));
            sysfs_value("/sys/class/net/eth0/statistics/rx_packets",
                        nic_rx, sizeof(nic_rx));
            sysfs_value("/sys/class/net/eth0/statistics/rx_dropped",
                        nic_drop, sizeof(nic_drop));
            n = snprintf(line, sizeof(line),
                         "udpecho rx=%lu tx=%lu txfail=%lu dupes=%lu "
                         "rcvbuf=%d "
                         "udp_in=%s udp_rcvbuf_errors=%s udp_in_errors=%s "
                         "udp_sndbuf_errors=%s tcp_retrans=%s nic_rx=%s "
                         "nic_drop=%s", rx, tx, txfail, dupes, size, in,
                         rcverr,
                         inerr, snderr, retrans, nic_rx, nic_drop);
            sendto(fd, line, n, 0, (void *)&from, len);
            printf("%s\n", line);
            fflush(stdout);
            /* A new run of udpblast starts its sequence numbers over */
            memset(seen, 0, sizeof(seen));
            continue;
        }
        rx++;
        if (n >= 16) {
            uint32_t magic;
            uint64_t seq;

            memcpy(&magic, buf, sizeof(magic));
            memcpy(&seq, buf + 8, sizeof(seq));
            if (magic == BLAST_MAGIC && seq < MAX_SEQ) {
                dupes += (seen[seq / 8] >> (seq % 8)) & 1;
                seen[seq / 8] |= 1u << (seq % 8);
            }
        }
        if (sendto(fd, buf, n, 0, (void *)&from, len) == n) {
            tx++;
        } else {
            txfail++;
        }
    }
}
