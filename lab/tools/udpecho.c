/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * udpecho: the guest's echo responder. Sends every UDP datagram received
 * on PORT straight back to its sender, and prints its counters to stdout
 * (the serial console) every 5 seconds when they changed.
 *
 * Exit: 1 runtime error, 2 usage; it never ends by itself.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sockaddr_in addr = { .sin_family = AF_INET };
    unsigned long rx = 0, tx = 0, shown = 0;
    time_t last = time(NULL);
    char *end;
    long port;
    int fd, bufsize = 32 << 20;

    if (argc != 2 || (port = strtol(argv[1], &end, 10)) < 1 || port > 65535 ||
        *end) {
        fprintf(stderr, "usage: udpecho PORT\n");
        return 2;
    }
    addr.sin_port = htons(port);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (void *)&addr, sizeof(addr)) < 0) {
        perror("udpecho");
        return 1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
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
        rx++;
        if (sendto(fd, buf, n, 0, (void *)&from, len) == n) {
            tx++;
        }
        if (rx != shown && time(NULL) - last >= 5) {
            printf("udpecho: rx %lu tx %lu\n", rx, tx);
            fflush(stdout);
            shown = rx;
            last = time(NULL);
        }
    }
}
