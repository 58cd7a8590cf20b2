/* Host synchronization for collectives: one lock and condition per group of threads, with
 * an abort flag so that a failing rank releases everyone waiting on it. */
#include "clpar/comm.h"
#include "../runtime/internal.h"
#include "sync.h"

#include <stdlib.h>

clpar_status clpar_sync_init(clpar_sync **out) {
    clpar_sync *s = calloc(1, sizeof *s);
    if (!s) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
    *out = s;
    return CLPAR_OK;
}

void clpar_sync_free(clpar_sync *s) {
    if (!s) return;
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->changed);
    free(s);
}

void clpar_sync_abort(clpar_sync *s) {
    pthread_mutex_lock(&s->lock);
    s->aborted = 1;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

void clpar_sync_reset(clpar_sync *s) {
    pthread_mutex_lock(&s->lock);
    s->aborted = 0;
    pthread_mutex_unlock(&s->lock);
}

void clpar_barrier_init(clpar_barrier *b, clpar_sync *s, int n) {
    b->sync = s;
    b->n = n;
    b->arrived = 0;
    b->generation = 0;
}

clpar_status clpar_barrier_wait(clpar_barrier *b) {
    clpar_sync *s = b->sync;
    pthread_mutex_lock(&s->lock);
    long gen = b->generation;
    if (++b->arrived == b->n) {
        b->arrived = 0;
        b->generation++;
        pthread_cond_broadcast(&s->changed);
    } else {
        while (b->generation == gen && !s->aborted)
            pthread_cond_wait(&s->changed, &s->lock);
    }
    int aborted = b->generation == gen && s->aborted;
    if (aborted) b->arrived = 0; /* the group is broken; start clean after a reset */
    pthread_mutex_unlock(&s->lock);
    return aborted ? CLPAR_EABORTED : CLPAR_OK;
}
