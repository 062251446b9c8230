/*  pm_zsys.h — CZMQ's process-wide setup, done once and safely.
    CZMQ initialises itself lazily on the first socket, which is not safe
    when several rank threads create their first sockets at once, and it
    would install SIGINT/SIGTERM handlers in the user's program.          */
#ifndef PM_ZSYS_H_INCLUDED
#define PM_ZSYS_H_INCLUDED
/* Turns CZMQ's signal handling off and initialises it; idempotent. */
void pm_zsys_ready (void);
#endif
