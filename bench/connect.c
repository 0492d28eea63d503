/* Connection latency, measured at C speed: N sequential TCP connects to ADDR PORT, each from a
 * new socket (a new conntrack entry, a new load-balancing decision), closed with a reset (no
 * TIME_WAIT). Prints one line: count, then the median, p90 and p99 of connect() in microseconds,
 * and the number of failed connects. Used by bench/latency.py inside a client namespace.
 *
 *     connect ADDR PORT N
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: connect ADDR PORT N\n");
        return 2;
    }
    int n = atoi(argv[3]), port = atoi(argv[2]), failed = 0, ok = 0;
    struct sockaddr_storage sa;
    socklen_t len;
    memset(&sa, 0, sizeof sa);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&sa;
    if (inet_pton(AF_INET, argv[1], &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, argv[1], &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof *v6;
    } else {
        fprintf(stderr, "not an address: %s\n", argv[1]);
        return 2;
    }
    double *us = calloc(n, sizeof *us);
    struct linger reset = {1, 0};
    for (int i = 0; i < n; i++) {
        int s = socket(sa.ss_family, SOCK_STREAM, 0);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = connect(s, (struct sockaddr *)&sa, len);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (rc == 0)
            us[ok++] = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
        else
            failed++;
        setsockopt(s, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close(s);
    }
    qsort(us, ok, sizeof *us, cmp);
    double med = ok ? us[ok / 2] : 0, p90 = ok ? us[ok * 9 / 10] : 0, p99 = ok ? us[ok * 99 / 100] : 0;
    printf("%d %.1f %.1f %.1f %d\n", ok, med, p90, p99, failed);
    return 0;
}
