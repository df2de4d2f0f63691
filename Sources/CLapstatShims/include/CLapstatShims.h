// Small C wrappers for what Swift cannot call directly: variadic C functions.
// Every name is prefixed lapstat_ so it cannot clash with the libraries' own.
#ifndef CLAPSTAT_SHIMS_H
#define CLAPSTAT_SHIMS_H

#include <stdint.h>
#include <microhttpd.h>

/// Starts a libmicrohttpd daemon bound to `host:port` (IPv4 dotted quad), one thread per
/// connection, at most `threads` connections at once. MHD_start_daemon is variadic, hence
/// this wrapper.
/// Returns NULL on failure (address in use, bad address).
struct MHD_Daemon *lapstat_mhd_start(const char *host, uint16_t port, unsigned int threads,
                                     MHD_AccessHandlerCallback handler, void *handler_cls);

/// The port a daemon actually listens on (useful when started on port 0).
uint16_t lapstat_mhd_port(struct MHD_Daemon *daemon);

/// Names the calling thread (shown by top -H, perf, gdb). pthread_setname_np needs
/// _GNU_SOURCE, which Swift's Glibc module does not define.
void lapstat_set_thread_name(const char *name);

/// Asks the kernel to send SIGTERM to the calling process when its parent dies, so the
/// children of `lapstat up` never outlive it (prctl is variadic). Returns 0 on success.
int lapstat_die_with_parent(void);

/// Receives one datagram with recvmsg and reads the SO_RXQ_OVFL control message: the
/// number of datagrams the kernel dropped on this socket since the option was set (for
/// want of buffer space). `*dropped` is left unchanged when no such message came.
/// Returns recvmsg's result (-1 with errno on failure). CMSG_* are macros, hence C.
long lapstat_recv_counting_drops(int fd, void *buffer, unsigned long length, uint32_t *dropped);

/// Sets glibc's malloc trim threshold and mmap threshold (bytes); <malloc.h>, where
/// mallopt and its M_* names live, is not part of Swift's Glibc module. Returns 1 when
/// both were set.
int lapstat_set_malloc_thresholds(unsigned long trim, unsigned long mmap);

#endif
