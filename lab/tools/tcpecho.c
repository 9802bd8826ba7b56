/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * tcpecho: the guest's TCP echo server. Accepts one connection at a time
 * on PORT and sends back every byte it receives, until the peer closes.
 *
 * Exit: 1 runtime error, 2 usage; it never ends by itself.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int write_all(int fd, const char *buf, ssize_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_in addr = { .sin_family = AF_INET };
    char *end;
    long port;
    int fd, one = 1;

    if (argc != 2 || (port = strtol(argv[1], &end, 10)) < 1 ||
        port > 65535 || *end) {
        fprintf(stderr, "usage: tcpecho PORT\n");
        return 2;
    }
    addr.sin_port = htons(port);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (void *)&addr, sizeof(addr)) < 0 ||
        listen(fd, 4) < 0) {
        perror("tcpecho");
        return 1;
    }
    printf("tcpecho: listening on %ld\n", port);
    fflush(stdout);
    for (;;) {
        int c = accept(fd, NULL, NULL);
        char buf[4096];
        ssize_t n;

        if (c < 0) {
            continue;
        }
        /* Answer each small message at once */
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        while ((n = read(c, buf, sizeof(buf))) > 0 &&
               !write_all(c, buf, n)) {
        }
        close(c);
    }
}
