/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * vduse-net: a virtio-net device for the vhost bed's vhost-vdpa netdevs: VDUSE
 * (the kernel's vDPA device in userspace) with two queues and nothing
 * behind them.  It answers the kernel's control requests and moves no
 * frames: enough for QEMU to open its /dev/vhost-vdpa-N, and for a
 * test that netpass refuses it.
 *
 *   vduse-net NAME MAC
 *
 * creates /dev/vduse/NAME, prints "ready" once it serves it, and on end
 * of standard input destroys the device and exits.  Bind it to
 * vhost_vdpa with `vdpa dev add name NAME mgmtdev vduse` meanwhile, and
 * unbind it (`vdpa dev del NAME`) before the end: a bound device cannot
 * be destroyed.  Exits 0, 1 on an error (named), 2 on bad arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/vduse.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#define QUEUES 2
#define QUEUE_SIZE 256

static void die(const char *what)
{
    fprintf(stderr, "vduse-net: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int create(int control, const char *name, const char *mac)
{
    struct virtio_net_config net = { .status = VIRTIO_NET_S_LINK_UP };
    struct vduse_dev_config *config;
    char path[sizeof("/dev/vduse/") + VDUSE_NAME_MAX];
    uint64_t version = 0;
    int dev;

    if (sscanf(mac, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &net.mac[0],
               &net.mac[1], &net.mac[2], &net.mac[3], &net.mac[4],
               &net.mac[5]) != 6) {
        fprintf(stderr, "vduse-net: not a MAC address: %s\n", mac);
        exit(2);
    }
    if (ioctl(control, VDUSE_SET_API_VERSION, &version)) {
        die("VDUSE_SET_API_VERSION");
    }
    config = calloc(1, sizeof(*config) + sizeof(net));
    if (!config) {
        die("calloc");
    }
    snprintf(config->name, sizeof(config->name), "%s", name);
    config->device_id = VIRTIO_ID_NET;
    /* VDUSE wants the IOMMU platform, and version 1 for a NIC */
    config->features = (1ULL << VIRTIO_F_VERSION_1) |
                       (1ULL << VIRTIO_F_ACCESS_PLATFORM) |
                       (1ULL << VIRTIO_NET_F_MAC) |
                       (1ULL << VIRTIO_NET_F_STATUS);
    config->vq_num = QUEUES;
    config->vq_align = 4096;
    config->config_size = sizeof(net);
    memcpy(config->config, &net, sizeof(net));
    if (ioctl(control, VDUSE_CREATE_DEV, config)) {
        die("VDUSE_CREATE_DEV");
    }
    free(config);

    snprintf(path, sizeof(path), "/dev/vduse/%s", name);
    dev = open(path, O_RDWR);
    if (dev < 0) {
        die(path);
    }
    for (unsigned i = 0; i < QUEUES; i++) {
        struct vduse_vq_config vq = { .index = i, .max_size = QUEUE_SIZE };

        if (ioctl(dev, VDUSE_VQ_SETUP, &vq)) {
            die("VDUSE_VQ_SETUP");
        }
    }
    return dev;
}

/* Every request succeeds; a queue's state is its start */
static void serve(int dev)
{
    struct vduse_dev_request req;
    struct vduse_dev_response rsp;
    ssize_t n = read(dev, &req, sizeof(req));

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n != sizeof(req)) {
        die("read a request");
    }
    memset(&rsp, 0, sizeof(rsp));
    rsp.request_id = req.request_id;
    rsp.result = VDUSE_REQ_RESULT_OK;
    if (req.type == VDUSE_GET_VQ_STATE) {
        rsp.vq_state.index = req.vq_state.index;
    }
    if (write(dev, &rsp, sizeof(rsp)) != sizeof(rsp)) {
        die("answer a request");
    }
}

int main(int argc, char **argv)
{
    char name[VDUSE_NAME_MAX] = "";
    int control, dev;

    if (argc != 3) {
        fprintf(stderr, "usage: vduse-net NAME MAC\n");
        return 2;
    }
    if (!argv[1][0] || strlen(argv[1]) >= VDUSE_NAME_MAX ||
        strchr(argv[1], '/')) {
        fprintf(stderr, "vduse-net: not a device name: %s\n", argv[1]);
        return 2;
    }
    control = open("/dev/vduse/control", O_RDWR);
    if (control < 0) {
        die("/dev/vduse/control");
    }
    dev = create(control, argv[1], argv[2]);
    printf("ready\n");
    fflush(stdout);

    for (;;) {
        struct pollfd fds[2] = {
            { .fd = dev, .events = POLLIN },
            { .fd = STDIN_FILENO, .events = POLLIN },
        };
        char buf[64];

        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("poll");
        }
        if (fds[0].revents) {
            serve(dev);
        }
        if (fds[1].revents && read(STDIN_FILENO, buf, sizeof(buf)) <= 0) {
            break;
        }
    }
    close(dev);
    snprintf(name, sizeof(name), "%s", argv[1]);
    if (ioctl(control, VDUSE_DESTROY_DEV, name)) {
        die(errno == EBUSY ? "VDUSE_DESTROY_DEV (still bound: vdpa dev del "
            "it first)" : "VDUSE_DESTROY_DEV");
    }
    return 0;
}
