/* Point-to-point hand-off between two ranks through host memory: the sender reads on its
 * transfer queue, the receiver writes on its own. */
#include "clpar/comm.h"
#include "../runtime/internal.h"
#include "sync.h"

#include <stdlib.h>

struct clpar_channel {
    clpar_device *from, *to;
    clpar_sync *sync;
    int slots;
    size_t count;
    float **data;
    long *posted; /* per slot: number of the message it holds, or -1 when free */
    size_t *len;
    uint64_t bytes;
};

clpar_status clpar_channel_init(clpar_device *from, clpar_device *to, int slots, size_t count,
                                clpar_sync *sync, clpar_channel **out) {
    *out = NULL;
    clpar_channel *c = calloc(1, sizeof *c);
    if (!c) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    c->from = from;
    c->to = to;
    c->sync = sync;
    c->slots = slots;
    c->count = count;
    c->data = calloc((size_t)slots, sizeof *c->data);
    c->posted = malloc((size_t)slots * sizeof *c->posted);
    c->len = calloc((size_t)slots, sizeof *c->len);
    int ok = c->data && c->posted && c->len;
    for (int i = 0; ok && i < slots; i++) {
        c->posted[i] = -1;
        ok = (c->data[i] = malloc((count ? count : 1) * sizeof(float))) != NULL;
    }
    if (!ok) {
        clpar_channel_free(c);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    *out = c;
    return CLPAR_OK;
}

void clpar_channel_free(clpar_channel *c) {
    if (!c) return;
    for (int i = 0; c->data && i < c->slots; i++)
        free(c->data[i]);
    free(c->data);
    free(c->posted);
    free(c->len);
    free(c);
}

/* Waits, under the sync's lock, until cond holds or the group aborts. */
#define WAIT_UNTIL(c, cond)                                                                        \
    do {                                                                                           \
        pthread_mutex_lock(&(c)->sync->lock);                                                      \
        while (!(cond) && !(c)->sync->aborted)                                                     \
            pthread_cond_wait(&(c)->sync->changed, &(c)->sync->lock);                              \
        int ok_ = (cond);                                                                          \
        pthread_mutex_unlock(&(c)->sync->lock);                                                    \
        if (!ok_) return CLPAR_EABORTED;                                                           \
    } while (0)

clpar_status clpar_channel_send(clpar_channel *c, long k, cl_mem src, size_t len, cl_event after,
                                cl_event *pending) {
    if (len > c->count)
        return clpar_error(CLPAR_EINVAL, "channel message of %zu floats exceeds %zu", len,
                           c->count);
    int s = (int)(k % c->slots);
    WAIT_UNTIL(c, c->posted[s] == -1);
    c->len[s] = len;
    CL_CHECK(clEnqueueReadBuffer(c->from->transfer, src, CL_FALSE, 0, len * sizeof(float),
                                 c->data[s], after ? 1 : 0, after ? &after : NULL, pending),
             "clEnqueueReadBuffer(hand-off)");
    CL_CHECK(clFlush(c->from->transfer), "clFlush(transfer)");
    /* compute queued later may overwrite src: it waits for the read, and nothing else does */
    return clpar_device_wait_events(c->from, 1, pending);
}

clpar_status clpar_channel_post(clpar_channel *c, long k, cl_event pending) {
    cl_int err = clWaitForEvents(1, &pending);
    CL_CHECK(err, "clWaitForEvents(hand-off read)");
    pthread_mutex_lock(&c->sync->lock);
    c->posted[k % c->slots] = k;
    c->bytes += c->len[k % c->slots] * sizeof(float);
    pthread_cond_broadcast(&c->sync->changed);
    pthread_mutex_unlock(&c->sync->lock);
    return CLPAR_OK;
}

void clpar_channel_reset(clpar_channel *c) {
    for (int i = 0; i < c->slots; i++)
        c->posted[i] = -1;
}

clpar_status clpar_channel_recv(clpar_channel *c, long k, cl_mem dst, size_t len,
                                cl_event *written) {
    int s = (int)(k % c->slots);
    WAIT_UNTIL(c, c->posted[s] == k);
    if (c->len[s] != len)
        return clpar_error(CLPAR_EINVAL, "hand-off message %ld holds %zu floats, expected %zu", k,
                           c->len[s], len);
    /* dst may still be read by compute queued before: the write waits for that, and compute
     * queued after waits for the write */
    cl_event before, write;
    CL_CHECK(clEnqueueMarkerWithWaitList(c->to->compute, 0, NULL, &before), "clEnqueueMarker");
    cl_int err = clEnqueueWriteBuffer(c->to->transfer, dst, CL_FALSE, 0, len * sizeof(float),
                                      c->data[s], 1, &before, &write);
    clReleaseEvent(before);
    CL_CHECK(err, "clEnqueueWriteBuffer(hand-off)");
    clFlush(c->to->compute);
    err = clWaitForEvents(1, &write);
    clpar_status st = err == CL_SUCCESS ? clpar_device_wait_events(c->to, 1, &write)
                                        : clpar_cl_error(err, "clWaitForEvents(hand-off write)");
    if (written && st == CLPAR_OK)
        *written = write;
    else
        clReleaseEvent(write);
    TRY(st);
    pthread_mutex_lock(&c->sync->lock);
    c->posted[s] = -1;
    pthread_cond_broadcast(&c->sync->changed);
    pthread_mutex_unlock(&c->sync->lock);
    return CLPAR_OK;
}

uint64_t clpar_channel_bytes(const clpar_channel *c) {
    return c->bytes;
}
