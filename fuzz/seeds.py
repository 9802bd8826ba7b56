#!/usr/bin/python3
"""Write the seed corpus of the netpass-wire fuzz target (corpus/).

Each input is one byte (where the destination cuts the section: 0xff
keeps it whole) and then records as netpass-wire.h describes them.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def record(netdev, vnet_hdr_len, frames, count=None):
    out = struct.pack('>H', len(netdev)) + netdev
    out += struct.pack('>II', vnet_hdr_len,
                       len(frames) if count is None else count)
    for frame in frames:
        out += struct.pack('>I', len(frame)) + frame
    return out


# A broadcast frame of a local experimental type, as the qtests send
ETH = bytes([0xff] * 6 + [0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x88, 0xb5])
ETH += b'S' + bytes(45)

SEEDS = {
    'one-frame': b'\xff' + record(b'net0', 12, [ETH]),
    'two-netdevs': b'\xff' + record(b'net0', 12, [ETH] * 3)
                   + record(b'net1', 0, [ETH[:20], ETH]),
    'cut-in-frame': b'\x80' + record(b'net0', 12, [ETH] * 4),
    'empty-record': b'\xff' + record(b'n', 10, []),
    'count-lies': b'\xff' + record(b'net0', 12, [ETH], count=5),
    'bad-length': b'\xff' + record(b'net0', 12, [ETH])
                  + b'\x00\x04net0' + struct.pack('>III', 12, 1, 0xffffffff),
    'long-id': b'\xff' + record(b'x' * 255, 12, [b'\x01']),
}

if __name__ == '__main__':
    os.makedirs(os.path.join(HERE, 'corpus', 'netpass-wire'), exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(HERE, 'corpus', 'netpass-wire', name),
                  'wb') as f:
            f.write(data)
