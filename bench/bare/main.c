/*
 * main.c - the bare rpcgen server's main: rpcgen -m's dispatch (bare_1),
 * one TCP listener on 127.0.0.1:PORT, libtirpc's svc_run.  No rpcbind: the
 * program is registered with protocol 0, and clients come to the port.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "bare.h"

void bare_1(struct svc_req *rqstp, SVCXPRT *transp);

void *
bare_ping_1_svc(void *arg, struct svc_req *req)
{
    static char done;           /* a void result: any pointer but NULL */

    (void)arg;
    (void)req;
    return &done;
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    SVCXPRT *x;

    if (argc != 2) {
        fprintf(stderr, "usage: bare PORT\n");
        return 2;
    }
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0 ||
        !(x = svctcp_create(fd, 0, 0)) || !svc_register(x, BARE, BARE_V1, bare_1, 0)) {
        perror("bare: cannot serve");
        return 1;
    }
    printf("bare: ready\n");
    fflush(stdout);
    svc_run();
    return 1;
}
