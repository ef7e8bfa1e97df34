/* SPDX-License-Identifier: MIT */
/* For test programs: reach librecorder.so's functions if it is preloaded (dlsym), so the same program
 * also runs, and checks less, without it. */
#ifndef MALLOCHOOKS_TESTS_RECORDER_CLIENT_H
#define MALLOCHOOKS_TESTS_RECORDER_CLIENT_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "recorder.h"

struct recorder_api {
    void (*get_counts)(struct mhtest_counts *);
    void (*log_begin)(void);
    size_t (*log_end)(struct mhtest_event *, size_t);
};

/* Non-zero when librecorder.so is loaded.  When `required` and it is not, exit with a failure. */
static inline int recorder_find(struct recorder_api *api, int required) {
    api->get_counts = (void (*)(struct mhtest_counts *))dlsym(RTLD_DEFAULT, "mhtest_get_counts");
    api->log_begin = (void (*)(void))dlsym(RTLD_DEFAULT, "mhtest_log_begin");
    api->log_end = (size_t(*)(struct mhtest_event *, size_t))dlsym(RTLD_DEFAULT, "mhtest_log_end");
    int found = api->get_counts && api->log_begin && api->log_end;
    if (!found && required) {
        fprintf(stderr, "this test needs LD_PRELOAD=librecorder.so\n");
        exit(2);
    }
    return found;
}

#endif
