/* SPDX-License-Identifier: MIT */
/* fork while other threads allocate: every child must be able to allocate, reallocate and free and then
 * exit; a child that hangs (a lock left held across fork) trips the alarm and fails the test.  Also forks
 * from a signal handler that may interrupt malloc in the main thread, as glibc's tst-mallocfork2 does. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "recorder_client.h"

static int child_work(void) {
    struct mhtest_counts c;
    struct recorder_api rec;
    for (int i = 0; i < 200; ++i) {
        char *p = malloc(1 + i * 37);
        if (!p) return 10;
        memset(p, 1, 1 + i * 37);
        p = realloc(p, 10000);
        if (!p) return 11;
        free(p);
    }
    if (recorder_find(&rec, 0)) rec.get_counts(&c); /* the client's state is usable in the child */
    return 0;
}

static volatile sig_atomic_t signal_forks, signal_fork_failures;
/* As glibc's tst-mallocfork2: the handler forks while the interrupted code may be inside malloc; the
 * child exits at once (allocating there would use a heap the interrupted malloc is halfway through
 * changing, which no allocator survives). What is tested is that fork itself never blocks. */
static void on_signal(int sig) {
    (void)sig;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid > 0) {
        int st;
        waitpid(pid, &st, 0);
        signal_forks++;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) signal_fork_failures++;
    }
}

/* glibc's fork from a signal handler is only safe in a process that never had a second thread (after
 * that, fork takes malloc's locks and the interrupted malloc holds one), so this runs in a child forked
 * before any thread exists.  Our runtime libraries start no threads of their own: if they did, this
 * would deadlock, as heaptrack does in glibc's tst-mallocfork2. */
static int count_threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    if (f) fclose(f);
    return n;
}

static int signal_fork_test(void) {
    if (count_threads() != 1) return 2; /* the hooks' runtime library must not have started a thread */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 2000}, {0, 2000}};
    setitimer(ITIMER_REAL, &it, NULL);
    /* Until 50 forks from the handler, or 3 s: a fast allocator on an idle machine gets through a fixed
     * number of iterations before ten 2 ms ticks have fired. */
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; signal_forks < 50; ++i) {
        free(malloc(1 + i % 4000));
        if ((i & 1023) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec - t0.tv_sec >= 3) break;
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    if (signal_fork_failures != 0 || signal_forks < 10) return 1;
    return 0;
}

int main(void) {
    alarm(120); /* a deadlocked child or parent ends the test as a failure */
    pid_t single = fork();
    CHECK(single >= 0);
    if (single == 0) _exit(signal_fork_test());
    int st;
    CHECK(waitpid(single, &st, 0) == single);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fprintf(stderr, "signal fork test: child status %#x (exit 2: a thread was started; 1: forks failed or too few)\n", st);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    pthread_t th[3];
    for (int i = 0; i < 3; ++i) CHECK(pthread_create(&th[i], NULL, churn_thread, NULL) == 0);
    int failures = 0;
    for (int round = 0; round < 150; ++round) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) _exit(child_work());
        CHECK(waitpid(pid, &st, 0) == pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) failures++;
    }
    atomic_store(&churn_stopping, 1);
    for (int i = 0; i < 3; ++i) pthread_join(th[i], NULL);
    CHECK(failures == 0);
    printf("fork: forks from a signal handler interrupting malloc, and 150 forks under 3 allocating threads: "
           "all children fine\n");
    return 0;
}
