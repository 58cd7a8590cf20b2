/* A fixed set of host threads, one per rank, that run one task at a time. */
#include "workers.h"
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    clpar_workers *pool;
    int rank;
    pthread_t thread;
    clpar_status status;
    char message[1024];
} worker;

struct clpar_workers {
    int n;
    worker *threads;
    pthread_mutex_t lock;
    pthread_cond_t start, done;
    long generation; /* bumped for each task */
    int remaining;   /* ranks still running the current task */
    int quit;
    clpar_worker_fn fn;
    void *ctx;
};

static void *worker_main(void *arg) {
    worker *me = arg;
    clpar_workers *w = me->pool;
    long seen = 0;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (!w->quit && w->generation == seen)
            pthread_cond_wait(&w->start, &w->lock);
        if (w->quit) {
            pthread_mutex_unlock(&w->lock);
            return NULL;
        }
        seen = w->generation;
        clpar_worker_fn fn = w->fn;
        void *ctx = w->ctx;
        pthread_mutex_unlock(&w->lock);

        me->status = fn(ctx, me->rank);
        if (me->status != CLPAR_OK) {
            strncpy(me->message, clpar_last_error_raw(), sizeof me->message - 1);
            me->message[sizeof me->message - 1] = 0;
        }
        pthread_mutex_lock(&w->lock);
        if (--w->remaining == 0) pthread_cond_signal(&w->done);
        pthread_mutex_unlock(&w->lock);
    }
}

clpar_status clpar_workers_init(int n, clpar_workers **out) {
    *out = NULL;
    clpar_workers *w = calloc(1, sizeof *w);
    if (!w) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    w->threads = calloc((size_t)n, sizeof *w->threads);
    if (!w->threads) {
        free(w);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->start, NULL);
    pthread_cond_init(&w->done, NULL);
    for (int r = 0; r < n; r++) {
        w->threads[r].pool = w;
        w->threads[r].rank = r;
        if (pthread_create(&w->threads[r].thread, NULL, worker_main, &w->threads[r]) != 0) {
            clpar_workers_free(w);
            return clpar_error(CLPAR_ENOMEM, "cannot start host thread %d", r);
        }
        w->n = r + 1;
    }
    *out = w;
    return CLPAR_OK;
}

void clpar_workers_free(clpar_workers *w) {
    if (!w) return;
    pthread_mutex_lock(&w->lock);
    w->quit = 1;
    pthread_cond_broadcast(&w->start);
    pthread_mutex_unlock(&w->lock);
    for (int r = 0; r < w->n; r++)
        pthread_join(w->threads[r].thread, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->start);
    pthread_cond_destroy(&w->done);
    free(w->threads);
    free(w);
}

clpar_status clpar_workers_run(clpar_workers *w, clpar_worker_fn fn, void *ctx) {
    pthread_mutex_lock(&w->lock);
    w->fn = fn;
    w->ctx = ctx;
    w->remaining = w->n;
    w->generation++;
    pthread_cond_broadcast(&w->start);
    while (w->remaining > 0)
        pthread_cond_wait(&w->done, &w->lock);
    pthread_mutex_unlock(&w->lock);
    /* the rank that failed first explains it better than those it made stop */
    for (int pass = 0; pass < 2; pass++)
        for (int r = 0; r < w->n; r++) {
            clpar_status st = w->threads[r].status;
            if (st != CLPAR_OK && (pass == 1 || st != CLPAR_EABORTED))
                return clpar_error(st, "%s", w->threads[r].message);
        }
    return CLPAR_OK;
}
