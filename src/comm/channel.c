/* Point-to-point hand-off between two ranks through host memory: the sender reads on its
 * transfer queue, the receiver writes on its own. Neither side blocks on the other's device:
 * a slot holds the read's event until the receiver has waited for it and queued its write,
 * then the write's event until the sender needs the slot again. */
#include "staging.h"
#include "sync.h"
#include "world.h"

#include <stdlib.h>

typedef struct {
    long msg;    /* number of the message in the slot, -1 when free */
    int written; /* 0: ev is the sender's read; 1: ev is the receiver's write */
    cl_event ev; /* NULL when free */
    size_t len;
    clpar_staging data;  /* on the sender's device (across processes: on this side's) */
    world_request *sent; /* across processes, sending: the message still in flight */
} slot;

struct clpar_channel {
    clpar_device *from, *to;
    clpar_sync *sync;
    int nslots;
    size_t count;
    slot *slots;
    uint64_t bytes;
    /* one end of a channel between processes: the peer process and the channel's tag base;
     * from or to is NULL (the other process's) */
    world_p2p *p2p;
    int peer;
    long tag;
};

/* Queues the write of a received message from host into dst on the receiver: after the
 * compute queued before (which may still read dst), before the compute queued after. *w
 * receives the write's event. */
static clpar_status queue_write(clpar_channel *c, cl_mem dst, const float *host, size_t len,
                                cl_event *w) {
    cl_event before;
    CL_CHECK(clEnqueueMarkerWithWaitList(c->to->compute, 0, NULL, &before), "clEnqueueMarker");
    clpar_status st = clpar_staging_write(c->to, dst, 0, host, len, 1, &before, w);
    clReleaseEvent(before);
    TRY(st);
    st = clpar_device_wait_events(c->to, 1, w);
    if (st == CLPAR_OK) {
        cl_int err = clFlush(c->to->compute);
        if (err != CL_SUCCESS) st = clpar_cl_error(err, "clFlush(compute)");
    }
    if (st != CLPAR_OK) clReleaseEvent(*w); /* the slot goes to the reset: it may be queued */
    return st;
}

/* Message k's tag: the channel's base and k modulo 2^15 (no more than `slots` messages of a
 * channel are in flight, and MPI matches in order). */
static long tag_of(const clpar_channel *c, long k) {
    return c->tag * 32768 + (k & 32767);
}

clpar_status clpar_channel_init_remote(clpar_device *local, int sending, int peer, long id,
                                       int slots, size_t count, world_p2p *p2p,
                                       clpar_channel **out) {
    *out = NULL;
    if (!p2p) return clpar_error(CLPAR_EINVAL, "a channel between processes needs MPI");
    if ((id + 1) * 32768 - 1 > world_p2p_max_tag(p2p))
        return clpar_error(CLPAR_EPROCESS, "channel %ld needs MPI tags up to %ld (this MPI: %ld)",
                           id, (id + 1) * 32768 - 1, world_p2p_max_tag(p2p));
    TRY(clpar_channel_init(local, local, slots, count, NULL, out));
    clpar_channel *c = *out;
    if (sending)
        c->to = NULL;
    else
        c->from = NULL;
    c->p2p = p2p;
    c->peer = peer;
    c->tag = id;
    return CLPAR_OK;
}

/* Sending across processes: the read into the slot, then the message on its way; the slot's
 * previous message must have left first. */
static clpar_status send_remote(clpar_channel *c, long k, cl_mem src, size_t len, cl_event after,
                                cl_event *read) {
    slot *s = &c->slots[k % c->nslots];
    TRY(world_request_wait(s->sent));
    s->sent = NULL;
    cl_event ev;
    TRY(clpar_staging_read(&s->data, 0, src, 0, len, after, &ev));
    cl_int err = clpar_wait_event(c->from, ev);
    if (err != CL_SUCCESS) {
        clReleaseEvent(ev);
        return clpar_cl_error(err, "clWaitForEvents(hand-off read)");
    }
    clpar_status st =
        world_p2p_isend(c->p2p, c->peer, tag_of(c, k), s->data.host, len * sizeof(float), &s->sent);
    if (st != CLPAR_OK) {
        clReleaseEvent(ev);
        return st;
    }
    c->bytes += len * sizeof(float);
    *read = ev;
    return CLPAR_OK;
}

/* Receiving across processes: the slot's previous write must have read the host copy, then
 * the message arrives in it and is written as in one process. */
static clpar_status recv_remote(clpar_channel *c, long k, cl_mem dst, size_t len,
                                cl_event *written) {
    slot *s = &c->slots[k % c->nslots];
    if (s->ev) {
        cl_int err = clpar_wait_event(c->to, s->ev);
        clReleaseEvent(s->ev);
        s->ev = NULL;
        CL_CHECK(err, "clWaitForEvents(hand-off write)");
    }
    TRY(world_p2p_recv(c->p2p, c->peer, tag_of(c, k), s->data.host, len * sizeof(float)));
    cl_event w;
    TRY(queue_write(c, dst, s->data.host, len, &w));
    s->ev = w;
    if (written) {
        clRetainEvent(w);
        *written = w;
    }
    return CLPAR_OK;
}

clpar_status clpar_channel_init(clpar_device *from, clpar_device *to, int slots, size_t count,
                                clpar_sync *sync, clpar_channel **out) {
    *out = NULL;
    clpar_channel *c = calloc(1, sizeof *c);
    if (!c) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    c->from = from;
    c->to = to;
    c->sync = sync;
    c->nslots = slots;
    c->count = count;
    c->slots = calloc((size_t)slots, sizeof *c->slots);
    if (!c->slots) {
        clpar_channel_free(c);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    for (int i = 0; i < slots; i++) {
        c->slots[i].msg = -1;
        clpar_status st = clpar_staging_init(&c->slots[i].data, from, count);
        if (st != CLPAR_OK) {
            clpar_channel_free(c);
            return st;
        }
    }
    *out = c;
    return CLPAR_OK;
}

void clpar_channel_free(clpar_channel *c) {
    if (!c) return;
    clpar_channel_reset(c);
    for (int i = 0; c->slots && i < c->nslots; i++)
        if (c->slots[i].data.dev) clpar_staging_free(&c->slots[i].data);
    free(c->slots);
    free(c);
}

/* Waits, under the sync's lock, until cond holds or the group aborts; returns with the lock
 * held when cond holds. */
#define LOCK_UNTIL(c, cond)                                                                        \
    do {                                                                                           \
        pthread_mutex_lock(&(c)->sync->lock);                                                      \
        while (!(cond) && !(c)->sync->aborted)                                                     \
            pthread_cond_wait(&(c)->sync->changed, &(c)->sync->lock);                              \
        if (!(cond)) {                                                                             \
            pthread_mutex_unlock(&(c)->sync->lock);                                                \
            return CLPAR_EABORTED;                                                                 \
        }                                                                                          \
    } while (0)

clpar_status clpar_channel_send(clpar_channel *c, long k, cl_mem src, size_t len, cl_event after,
                                cl_event *read) {
    if (len > c->count)
        return clpar_error(CLPAR_EINVAL, "channel message of %zu floats exceeds %zu", len,
                           c->count);
    if (c->p2p) return send_remote(c, k, src, len, after, read);
    slot *s = &c->slots[k % c->nslots];
    /* the slot is free, or its last message was taken: only the write may still read it */
    LOCK_UNTIL(c, s->msg == -1 || s->written);
    cl_event w = s->ev;
    s->ev = NULL;
    s->msg = -1;
    pthread_mutex_unlock(&c->sync->lock);
    if (w) {
        cl_int err = clpar_wait_event(c->from, w);
        clReleaseEvent(w);
        CL_CHECK(err, "clWaitForEvents(hand-off write)");
    }
    cl_event ev;
    TRY(clpar_staging_read(&s->data, 0, src, 0, len, after, &ev));
    /* compute queued later may overwrite src: it waits for the read */
    clpar_status st = clpar_device_wait_events(c->from, 1, &ev);
    if (st != CLPAR_OK) {
        clReleaseEvent(ev);
        return st;
    }
    clRetainEvent(ev);
    *read = ev;
    pthread_mutex_lock(&c->sync->lock);
    s->len = len;
    s->written = 0;
    s->ev = ev;
    s->msg = k;
    c->bytes += len * sizeof(float);
    pthread_cond_broadcast(&c->sync->changed);
    pthread_mutex_unlock(&c->sync->lock);
    return CLPAR_OK;
}

clpar_status clpar_channel_recv(clpar_channel *c, long k, cl_mem dst, size_t len,
                                cl_event *written) {
    if (c->p2p) return recv_remote(c, k, dst, len, written);
    slot *s = &c->slots[k % c->nslots];
    LOCK_UNTIL(c, s->msg == k && !s->written);
    cl_event r = s->ev;
    size_t have = s->len;
    pthread_mutex_unlock(&c->sync->lock);
    if (have != len)
        return clpar_error(CLPAR_EINVAL, "hand-off message %ld holds %zu floats, expected %zu", k,
                           have, len);
    /* only this thread takes message k, so the slot stays as it is meanwhile */
    CL_CHECK(clpar_wait_event(c->to, r), "clWaitForEvents(hand-off read)");
    cl_event w;
    TRY(queue_write(c, dst, s->data.host, len, &w));
    if (written) clRetainEvent(w);
    pthread_mutex_lock(&c->sync->lock);
    clReleaseEvent(r);
    s->ev = w;
    s->written = 1;
    pthread_cond_broadcast(&c->sync->changed);
    pthread_mutex_unlock(&c->sync->lock);
    if (written) *written = w;
    return CLPAR_OK;
}

void clpar_channel_reset(clpar_channel *c) {
    for (int i = 0; c->slots && i < c->nslots; i++) {
        world_request_wait(c->slots[i].sent); /* a failed run ends every process anyway */
        c->slots[i].sent = NULL;
        if (c->slots[i].ev) {
            clWaitForEvents(1, &c->slots[i].ev);
            clReleaseEvent(c->slots[i].ev);
        }
        c->slots[i].ev = NULL;
        c->slots[i].msg = -1;
        c->slots[i].written = 0;
    }
}

uint64_t clpar_channel_bytes(const clpar_channel *c) {
    return c->bytes;
}

int clpar_channel_remote(const clpar_channel *c) {
    return c->p2p != NULL;
}
