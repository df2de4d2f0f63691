// CRC-32C (Castagnoli) over a byte range, in C because Swift on Linux cannot reach the
// SSE 4.2 crc32 instruction. Every frame, spool record, block column and index is
// checksummed, so at a few million samples a second the byte-at-a-time table loop was a
// visible share of the shim's and the writer's CPU (perf: ~4% of the sender thread).
#ifndef CLAPSTAT_CHECKSUM_H
#define CLAPSTAT_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/// Continues a CRC-32C: `crc` is the value returned for the bytes before (0 to start).
/// The same result as the bitwise definition (reflected polynomial 0x82F63B78, initial
/// and final value inverted), with the crc32 instruction where the CPU has it and an
/// 8-bytes-at-a-time table loop otherwise.
uint32_t lapstat_crc32c(uint32_t crc, const void *data, size_t length);

/// The same with the table loop only, whatever the CPU: lets tests check both paths.
uint32_t lapstat_crc32c_portable(uint32_t crc, const void *data, size_t length);

#endif
