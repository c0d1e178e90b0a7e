/* The kernel's floor under an SSE fan-out: N loopback TCP connections, their far ends read by a
 * child process on another core (epoll, as a client would), and this process sending one
 * event-sized write to each in turn, as a server's fan-out does: no server, no Python.
 *
 *     sendfloor N ROUNDS BYTES SEND_CPU RECV_CPU
 *
 * Prints one line per round: the milliseconds from the start of the round at which each send
 * returned (on loopback a send has put the bytes in the receiver's socket when it returns), space
 * separated. bench/sendfloor.py compiles and runs it. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void pin(int cpu) {
    cpu_set_t set;
    if (cpu < 0) return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: sendfloor N ROUNDS BYTES SEND_CPU RECV_CPU\n");
        return 2;
    }
    int n = atoi(argv[1]), rounds = atoi(argv[2]), size = atoi(argv[3]);
    int one = 1, lsock = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (bind(lsock, (void *)&addr, sizeof addr) || listen(lsock, 4096)
        || getsockname(lsock, (void *)&addr, &alen)) {
        perror("listen");
        return 1;
    }
    int *far = calloc(n, sizeof(int)), *near = calloc(n, sizeof(int));
    for (int i = 0; i < n; i++) {
        far[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (far[i] < 0 || connect(far[i], (void *)&addr, sizeof addr)
            || (near[i] = accept(lsock, NULL, NULL)) < 0) {
            perror("connect");
            return 1;
        }
        setsockopt(near[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    pid_t child = fork();
    if (child == 0) {
        pin(atoi(argv[5]));
        int ep = epoll_create1(0);
        for (int i = 0; i < n; i++) {
            struct epoll_event e = {.events = EPOLLIN, .data.fd = far[i]};
            epoll_ctl(ep, EPOLL_CTL_ADD, far[i], &e);
        }
        struct epoll_event ev[256];
        char buf[65536];
        long want = (long)n * rounds * size, got = 0;
        while (got < want) {
            int k = epoll_wait(ep, ev, 256, 10000);
            if (k <= 0) break;
            for (int j = 0; j < k; j++) {
                ssize_t r = read(ev[j].data.fd, buf, sizeof buf);
                if (r > 0) got += r;
            }
        }
        _exit(got == want ? 0 : 1);
    }
    pin(atoi(argv[4]));
    char *msg = malloc(size);
    memset(msg, 'x', size);
    double *at = calloc(n, sizeof(double));
    for (int r = 0; r < rounds; r++) {
        usleep(20000); /* the receivers idle again, as between two creates */
        double t0 = now_ms();
        for (int i = 0; i < n; i++) {
            if (send(near[i], msg, size, 0) != size) {
                perror("send");
                return 1;
            }
            at[i] = now_ms() - t0;
        }
        for (int i = 0; i < n; i++) printf(i ? " %.4f" : "%.4f", at[i]);
        printf("\n");
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
