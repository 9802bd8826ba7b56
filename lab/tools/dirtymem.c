/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * dirtymem: the guest's memory workload. Keeps MIB mebibytes of memory and
 * writes one byte in PAGES pages every second, round robin, so that
 * migration always has dirty pages to send at switchover.
 *
 * It also checks that memory, as the migration tests' guest program is
 * checked: each write stores the next byte value in the next page, so
 * every page holds its predecessor's value plus one (mod 256; the number
 * of pages is a multiple of 256, so this also holds across the page
 * written last and the oldest one), and pages not written yet hold 0.
 * Every CHECK_S seconds it verifies all pages and prints
 * "dirtymem: check N ok" or "dirtymem: check N: K pages wrong": a
 * migration that lost or mixed up a page shows there.
 *
 * Exit: 1 runtime error, 2 usage; it never ends by itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define TICKS 100               /* batches per second */
#define CHECK_S 2               /* seconds between checks */

static long check(const unsigned char *mem, long npages, long at,
                  int wrapped)
{
    long bad = 0;

    for (long p = 1; p < (wrapped ? npages : at); p++) {
        bad += mem[p * PAGE] != (unsigned char)(mem[(p - 1) * PAGE] + 1);
    }
    if (wrapped) {
        bad += mem[0] != (unsigned char)(mem[(npages - 1) * PAGE] + 1);
    } else {
        for (long p = at; p < npages; p++) {
            bad += mem[p * PAGE] != 0;
        }
    }
    return bad;
}

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
    mem = calloc(npages, PAGE);
    if (!mem) {
        perror("dirtymem");
        return 1;
    }
    printf("dirtymem: %ld MiB, %ld pages/s\n", mib, pages);
    fflush(stdout);
    for (long n = 0, checks = 0, wrapped = 0;; n++) {
        struct timespec tick = { 0, 1000000000 / TICKS };

        for (long i = 0; i < pages / TICKS + 1; i++) {
            mem[at * PAGE] = ++v;
            at = (at + 1) % npages;
            wrapped |= at == 0;
        }
        if (n % (TICKS * CHECK_S) == TICKS * CHECK_S - 1) {
            long bad = check(mem, npages, at, wrapped);

            if (bad) {
                printf("dirtymem: check %ld: %ld pages wrong\n", ++checks,
                       bad);
            } else {
                printf("dirtymem: check %ld ok\n", ++checks);
            }
            fflush(stdout);
        }
        nanosleep(&tick, NULL);
    }
}
