#define _GNU_SOURCE
#include "CLapstatShims.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct MHD_Daemon *lapstat_mhd_start(const char *host, uint16_t port, unsigned int threads,
                                     MHD_AccessHandlerCallback handler, void *handler_cls) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        return NULL;
    }
    /* A thread per connection: streamed bodies (live tail, exports) block in their
       content reader until data comes, which a shared polling pool cannot allow. */
    return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                                MHD_USE_ERROR_LOG,
                            port, NULL, NULL, handler, handler_cls,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                            MHD_OPTION_CONNECTION_LIMIT, threads,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
                            MHD_OPTION_END);
}

uint16_t lapstat_mhd_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info == NULL ? 0 : info->port;
}

void lapstat_set_thread_name(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = 0;
    pthread_setname_np(pthread_self(), truncated);
}

int lapstat_lower_thread_priority(int niceness) {
    /* On Linux a nice value is per thread, addressed by its thread id. */
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), niceness);
}

int lapstat_die_with_parent(void) {
    return prctl(PR_SET_PDEATHSIG, SIGTERM);
}

long lapstat_recv_batch_counting_drops(int fd, void *buffer, unsigned long slot_size, unsigned int slots,
                                       unsigned long *lengths, int wait, uint32_t *dropped) {
    enum { max_slots = 64 };
    if (slots > max_slots) slots = max_slots;
    struct iovec iov[max_slots];
    struct mmsghdr msgs[max_slots];
    union {
        char bytes[CMSG_SPACE(sizeof(uint32_t))];
        struct cmsghdr align;
    } control[max_slots];
    memset(msgs, 0, sizeof(struct mmsghdr) * slots);
    for (unsigned int i = 0; i < slots; i++) {
        iov[i].iov_base = (char *)buffer + (size_t)i * slot_size;
        iov[i].iov_len = slot_size;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = control[i].bytes;
        msgs[i].msg_hdr.msg_controllen = sizeof control[i].bytes;
    }
    int n = recvmmsg(fd, msgs, slots, wait ? MSG_WAITFORONE : MSG_DONTWAIT, NULL);
    if (n < 0) return -1;
    for (int i = 0; i < n; i++) {
        // A datagram longer than its slot was cut: reported as a length past the slot, so
        // the caller can count it as rejected instead of parsing half of it.
        lengths[i] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? slot_size + 1 : msgs[i].msg_len;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != NULL; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                memcpy(dropped, CMSG_DATA(c), sizeof(uint32_t));
            }
        }
    }
    return n;
}

int lapstat_set_malloc_thresholds(unsigned long trim, unsigned long mmap) {
    return mallopt(M_TRIM_THRESHOLD, (int)trim) == 1 && mallopt(M_MMAP_THRESHOLD, (int)mmap) == 1;
}
