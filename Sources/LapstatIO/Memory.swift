import CLapstatShims

/// Process-wide allocator settings.
public enum Memory {
    /// glibc's malloc trim and mmap thresholds in bytes (mallopt); false if either was refused.
    public static func setMallocThresholds(trim: Int, mmap: Int) -> Bool {
        lapstat_set_malloc_thresholds(UInt(trim), UInt(mmap)) == 1
    }
}
