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

/// Gives the calling thread (only) the nice value `niceness` (0 … 19), so background work
/// such as compaction yields the CPU to the threads that answer clients. The thread id
/// comes from syscall(SYS_gettid), which is variadic. Returns 0 on success.
int lapstat_lower_thread_priority(int niceness);

/// Asks the kernel to send SIGTERM to the calling process when its parent dies, so the
/// children of `lapstat up` never outlive it (prctl is variadic). Returns 0 on success.
int lapstat_die_with_parent(void);

/// Receives up to `slots` (at most 64) datagrams with one recvmmsg: datagram i goes to
/// `buffer + i * slot_size` and its length to `lengths[i]` (slot_size + 1 when it was cut).
/// `*dropped` gets the SO_RXQ_OVFL count (datagrams the kernel dropped on this socket for
/// want of buffer space since the option was set) from the last datagram that carried it,
/// and is left unchanged when none did. CMSG_* are macros, hence C. With `wait`, blocks
/// (up to the socket's receive timeout) for the first datagram only; without, never blocks.
/// Returns the number received, or -1 with errno (EAGAIN when there was none).
long lapstat_recv_batch_counting_drops(int fd, void *buffer, unsigned long slot_size, unsigned int slots,
                                       unsigned long *lengths, int wait, uint32_t *dropped);

/// Sets glibc's malloc trim threshold and mmap threshold (bytes); <malloc.h>, where
/// mallopt and its M_* names live, is not part of Swift's Glibc module. Returns 1 when
/// both were set.
int lapstat_set_malloc_thresholds(unsigned long trim, unsigned long mmap);

#endif
