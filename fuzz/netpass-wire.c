/*
 * libFuzzer target: the netpass wire parser (net/netpass-wire.c of
 * the series), which reads the records of a forwarded section on the
 * destination, from a migration stream nobody vouches for.
 *
 * The first byte of an input says where the destination cuts the
 * section short (its own memory bound keeps only a prefix); the rest is
 * the records.  Both the whole and the cut records are parsed, each from
 * a buffer of exactly its size so that AddressSanitizer sees any read
 * past it.  Every record and frame the parser returns must lie within
 * the buffer and agree with what it announced; anything else aborts.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "net/netpass-wire.h"

/* NET_BUFSIZE, the largest frame a source captures */
#define FRAME_MAX (4096 + 65536)

static void check(bool ok)
{
    if (!ok) {
        abort();
    }
}

static void parse(const uint8_t *buf, size_t len)
{
    NetpassWireReader r;
    NetpassWireRecord rec;
    int ret;

    netpass_wire_reader_init(&r, buf, len, FRAME_MAX);
    while ((ret = netpass_wire_next_record(&r, &rec)) > 0) {
        const uint8_t *data;
        uint32_t flen, frames = 0;

        check(rec.id_len && rec.id_len <= NETPASS_WIRE_ID_MAX);
        check(rec.id >= buf && rec.id + rec.id_len <= buf + len);
        check(rec.complete <= rec.count);
        while (netpass_wire_next_frame(&rec.frames, &data, &flen)) {
            check(flen && flen <= FRAME_MAX);
            check(data >= buf && data + flen <= buf + len);
            frames++;
        }
        check(frames == rec.complete);
        check(r.pos <= len);
    }
    check(ret == 0 || ret == -1);
    check(r.pos <= len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len, cut;
    uint8_t *copy;

    if (!size) {
        return 0;
    }
    len = size - 1;
    cut = len * data[0] / 255;

    copy = g_memdup2(data + 1, len);
    parse(copy, len);
    g_free(copy);

    copy = g_memdup2(data + 1, cut);
    parse(copy, cut);
    g_free(copy);
    return 0;
}
