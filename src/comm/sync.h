/* The layout of clpar_sync, shared by the files of the communication level. */
#ifndef CLPAR_SYNC_H
#define CLPAR_SYNC_H

#include <pthread.h>

struct clpar_sync {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* broadcast on every arrival, post, receive and abort */
    int aborted;
};

#endif
