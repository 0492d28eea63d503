/* Sends N one-byte UDP datagrams to ADDR:PORT as fast as it can (bench/commit_race.py): every
 * datagram runs the output hook's rules. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) return 2;
    long n = atol(argv[3]);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    char byte = 0;
    for (long i = 0; i < n; i++) sendto(s, &byte, 1, 0, (struct sockaddr *)&to, sizeof to);
    return 0;
}
