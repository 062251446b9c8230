/*  pm_texts.h — messages every backend must give word for word (the seed's). */
#ifndef PM_TEXTS_H_INCLUDED
#define PM_TEXTS_H_INCLUDED
#define PM_GATHER_MISMATCH_TEXT "Gathering arrays to root cannot be done with mismatched sizes"
#endif
