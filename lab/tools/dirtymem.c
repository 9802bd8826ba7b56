/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * dirtymem: the guest's memory workload. Keeps MIB mebibytes of memory and
 * writes one byte in PAGES pages every second, round robin, so that
 * migration always has dirty pages to send at switchover.
 *
 * Exit: 1 runtime error, 2 usage; it never ends by itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define TICKS 100               /* batches per second */

int main(int argc, char **argv)
{
    long mib, pages, npages, at = 0;
    unsigned char *mem;
    unsigned char v = 0;

    if (argc != 3 || (mib = atol(argv[1])) < 1 || mib > 4096 ||
        (pages = atol(argv[2])) < 1 || pages > 10000000) {
        fprintf(stderr, "usage: dirtymem MIB PAGES-PER-SECOND\n");
        return 2;
    }
    npages = mib * (1024 * 1024 / PAGE);
    mem = malloc(npages * PAGE);
    if (!mem) {
        perror("dirtymem");
        return 1;
    }
    printf("dirtymem: %ld MiB, %ld pages/s\n", mib, pages);
    fflush(stdout);
    for (;;) {
        struct timespec tick = { 0, 1000000000 / TICKS };

        for (long i = 0; i < pages / TICKS + 1; i++) {
            mem[at * PAGE] = ++v;
            at = (at + 1) % npages;
        }
        nanosleep(&tick, NULL);
    }
}
