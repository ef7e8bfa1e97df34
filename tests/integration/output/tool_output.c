/* SPDX-License-Identifier: MIT */
/* A program for the tools' output tests (output.sh): what it does with its own descriptors and signals,
 * and, with "index" as the last argument, a heap error that libheapindex.so reports (a byte written past
 * malloc_usable_size: the index's trailer; only run under the index, where that byte is the index's).
 *   close-stderr DATA [index]  close fd 2, open DATA (which becomes fd 2), write a line to it; the tools'
 *                              messages must not land in DATA
 *   wait [index]               read a line from stdin first (the test closes the read end of our stderr
 *                              pipe before sending it), then exit 0 printing "alive": a tool write to the
 *                              broken pipe must not kill us with SIGPIPE
 *   pending-kept index         as wait, with SIGPIPE blocked and one of our own pending: still pending after
 *                              the tool's write
 *   none-pending index         as wait, with SIGPIPE blocked: no SIGPIPE pending after the tool's write
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void heap_error(void) {
    char *p = malloc(24);
    if (p == NULL) exit(2);
    p[malloc_usable_size(p)] = 'X'; /* the index's trailer */
    free(p);                        /* reported here */
}

static void wait_for_go(void) {
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL) exit(4);
}

static int sigpipe_pending(void) {
    sigset_t s;
    sigpending(&s);
    return sigismember(&s, SIGPIPE);
}

int main(int argc, char **argv) {
    const int index = argc > 1 && strcmp(argv[argc - 1], "index") == 0;
    char *warm = malloc(100); /* the tools start at the first allocation */
    free(warm);
    if (argc >= 3 && strcmp(argv[1], "close-stderr") == 0) {
        close(2);
        const int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd != 2) return 3;
        if (write(2, "program data\n", 13) != 13) return 3;
        if (index) heap_error();
        printf("alive\n");
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "wait") == 0) {
        wait_for_go();
        if (index) heap_error();
        printf("alive\n");
        return 0;
    }
    if (argc >= 2 && (strcmp(argv[1], "pending-kept") == 0 || strcmp(argv[1], "none-pending") == 0)) {
        const int keep = strcmp(argv[1], "pending-kept") == 0;
        sigset_t pipe_only;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        sigprocmask(SIG_BLOCK, &pipe_only, NULL);
        if (keep) raise(SIGPIPE);
        wait_for_go();
        heap_error();
        if (sigpipe_pending() != keep) {
            printf("SIGPIPE %s after the tool's write\n", keep ? "lost" : "left pending");
            return 5;
        }
        printf("alive\n");
        return 0;
    }
    fprintf(stderr, "usage: tool_output close-stderr DATA [index] | wait [index] | pending-kept index | none-pending index\n");
    return 2;
}
