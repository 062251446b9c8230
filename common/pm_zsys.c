/*  pm_zsys.c — one-time CZMQ setup (see pm_zsys.h).  */
#include "pm_zsys.h"

#include <czmq.h>
#include <pthread.h>

static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void
s_setup (void)
{
    zsys_handler_set (NULL); /* the program owns its signals */
    zsys_init ();
}

void
pm_zsys_ready (void)
{
    pthread_once (&s_once, s_setup);
}
