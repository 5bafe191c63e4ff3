/*
 * LD_PRELOAD shim: move IPv4 loopback binds to another address.
 *
 * librdkafka's mock brokers always bind 127.0.0.1:<port>.  With this shim
 * preloaded and BIND_IP set (e.g. BIND_IP=10.213.7.2), every
 * bind(AF_INET, 127.0.0.1:<port>) becomes bind(AF_INET, $BIND_IP:<port>).
 * Because the mock reads its listening address back with getsockname(), the
 * brokers then also advertise $BIND_IP in Metadata.  Other binds (other
 * addresses, IPv6, AF_UNIX) pass through untouched.
 *
 * Build: gcc -shared -fPIC -O2 -o bindshim.so bindshim.c -ldl
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    static bind_fn real_bind;
    if (!real_bind) {
        real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
        if (!real_bind) {
            errno = ENOSYS;
            return -1;
        }
    }

    const char *want = getenv("BIND_IP");
    if (want && *want && addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        if (in->sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
            struct sockaddr_in moved;
            memcpy(&moved, in, sizeof(moved));
            if (inet_pton(AF_INET, want, &moved.sin_addr) != 1) {
                errno = EINVAL;
                return -1;
            }
            return real_bind(fd, (const struct sockaddr *)&moved, sizeof(moved));
        }
    }
    return real_bind(fd, addr, len);
}
