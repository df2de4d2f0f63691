import Foundation
import LapstatCore
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import LapstatShim

/// One test per way a log file changes under the tailer (issue 3): each checks that no line
/// is counted twice and that nothing is lost beyond the documented copytruncate race.
@Suite struct FileTailerTests {
    // MARK: - Fingerprints

    @Test func fingerprintsCompareTheSamePrefixLength() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        app.write(lines: 0..<3)
        let (sender, tailer) = startTailer(app.path)
        tailer.poll()
        sender.take()
        let short = try #require(sender.checkpoint)
        // Shorter than 256 bytes when fingerprinted: the length is what there was.
        #expect(short.fingerprintLength == Int(fileSize(app.path)!))
        #expect(short.fingerprint == FileTailer.fingerprint(fileBytes(app.path)))

        app.write(lines: 3..<100)
        tailer.poll()
        sender.take()
        let long = try #require(sender.checkpoint)
        #expect(long.fingerprintLength == FileTailer.fingerprintBytes)
        #expect(long.fingerprint == FileTailer.fingerprint(fileBytes(app.path).prefix(FileTailer.fingerprintBytes)))
        // The old, short fingerprint still names the grown file: a restart from it resumes.
        app.write(lines: 100..<102)
        let (resumed, again) = startTailer(app.path, from: short)
        again.poll()
        resumed.take()
        #expect(resumed.requests == ids(3..<102))
    }

    @Test func anEmptyFileHasNoFingerprintAndReportsNoPosition() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        let (sender, tailer) = startTailer(app.path)
        pollAndTake(tailer, sender)
        #expect(sender.checkpoint == nil)
        app.write(lines: 0..<1)
        tailer.poll()
        sender.take()
        #expect(sender.checkpoint?.fingerprintLength == AppLog.line(0).utf8.count)
    }

    // MARK: - Case 1: rotation by rename

    @Test func renameRotationDrainsTheOldFileThenReadsTheNewOneFromItsStart() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        let (sender, tailer) = startTailer(app.path)
        app.write(lines: 0..<5)
        tailer.poll()

        try dir.rename("app.log", "app.log.1")
        app.write(lines: 5..<8)                         // the app still writes its old descriptor
        tailer.poll()                                   // nothing at the path: the old file is followed
        #expect(sender.take().map(\.request) == ids(0..<8))

        // logrotate's `create`: a new empty file before the app is told to reopen.
        #expect(FileManager.default.createFile(atPath: dir.file("app.log"), contents: nil))
        app.write(lines: 8..<10)
        tailer.poll()                                   // new file empty: stay on the old one
        app.write("cut:7")                              // an unfinished line the app abandons there
        app.reopen()
        app.write(lines: 10..<13)
        pollAndTake(tailer, sender)
        #expect(sender.requests == ids(0..<10) + ["cut"] + ids(10..<13))
        #expect(sender.delivered.first { $0.request == "cut" }?.valueMicros == 7_000)
        let position = try #require(sender.checkpoint)
        #expect(position.inode == inode(app.path))
        #expect(position.offset == fileSize(app.path))
    }

    // MARK: - Case 2: rotation by copytruncate

    @Test func copytruncateRereadsFromTheStartAndLosesAtMostTheRaceWindow() throws {
        let dir = try TailDirectory()
        let archive = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        let (sender, tailer) = startTailer(app.path)
        app.write(lines: 0..<10)
        tailer.poll()
        let sameInode = inode(app.path)
        app.write(lines: 10..<13)                       // the race window: after the last read
        try FileManager.default.copyItem(atPath: app.path, toPath: archive.file("app.log.1"))
        truncateFile(app.path)
        app.write(lines: 13..<16)                       // O_APPEND: written from offset 0
        #expect(inode(app.path) == sameInode)
        pollAndTake(tailer, sender)
        expectAtMostRaceWindowLost(sender.requests, all: 0..<16, window: 10..<13)
        #expect(sender.checkpoint?.offset == fileSize(app.path))
    }

    @Test func copytruncateFinishesACopyKeptBesideTheFile() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        let (sender, tailer) = startTailer(app.path)
        app.write(lines: 0..<40)                        // more than a full fingerprint
        app.write("r40:")                               // an unfinished line, finished before the copy
        tailer.poll()
        app.write("40\n")
        app.write(lines: 41..<43)
        try FileManager.default.copyItem(atPath: app.path, toPath: dir.file("app.log.1"))
        truncateFile(app.path)
        app.write(lines: 43..<46)
        pollAndTake(tailer, sender)
        #expect(sender.requests == ids(0..<46))
        #expect(sender.delivered.first { $0.request == "r40" }?.valueMicros == 40_000)
    }

    /// Under 256 bytes read, a fingerprint is too weak to tell this file's copy from other
    /// files that start alike, so the copy is not used: the race window is lost, as without one.
    @Test func copytruncateOfAFileReadBelowAFullFingerprintLosesAtMostTheRaceWindow() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        let (sender, tailer) = startTailer(app.path)
        app.write(lines: 0..<5)
        tailer.poll()
        app.write(lines: 5..<8)
        try FileManager.default.copyItem(atPath: app.path, toPath: dir.file("app.log.1"))
        truncateFile(app.path)
        app.write(lines: 8..<10)
        pollAndTake(tailer, sender)
        expectAtMostRaceWindowLost(sender.requests, all: 0..<10, window: 5..<8)
    }

    /// Truncated and written past the old read position between two polls: only the first
    /// bytes tell, through the fingerprint.
    @Test func contentReplacedInPlaceIsSeenByTheFingerprint() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        let (sender, tailer) = startTailer(app.path)
        app.write(lines: 0..<5)
        tailer.poll()
        let readSize = fileSize(app.path)!
        truncateFile(app.path)
        app.write(lines: 100..<140)
        #expect(fileSize(app.path)! > readSize)
        pollAndTake(tailer, sender)
        #expect(sender.requests == ids(0..<5) + ids(100..<140))
    }

    // MARK: - Case 3: rotation by create

    @Test(arguments: ["delete", "rename"])
    func createRotationReadsTheNewFileAfterFinishingTheOld(how: String) throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        let (sender, tailer) = startTailer(app.path)
        app.write(lines: 0..<5)
        tailer.poll()
        if how == "delete" {
            try FileManager.default.removeItem(atPath: app.path)
        } else {
            try dir.rename("app.log", "old-app.log")     // not a sibling name: only the descriptor finds it
        }
        app.write(lines: 5..<8)                         // unread when the path changes
        app.reopen()                                    // creates the new file
        app.write(lines: 8..<11)
        pollAndTake(tailer, sender)
        #expect(sender.requests == ids(0..<11))
        #expect(sender.checkpoint?.inode == inode(app.path))
    }

    // MARK: - Case 4: truncated while stopped

    @Test func resumingBeyondTheEndOfATruncatedFileReadsFromTheStart() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        app.write(lines: 0..<50)
        let checkpoint = try runOnce(app.path).checkpoint

        // Truncated while stopped; the app starts over with lines of the same beginning, so
        // only the size says that the checkpoint's bytes are gone.
        truncateFile(app.path)
        app.write(lines: 0..<3)
        var short = checkpoint
        short.fingerprintLength = AppLog.line(0).utf8.count
        short.fingerprint = FileTailer.fingerprint(Array(AppLog.line(0).utf8))
        let sender = resumeAndTake(app.path, from: short)
        #expect(sender.requests == ids(0..<3))
    }

    @Test func resumingWithAFingerprintThatNoLongerMatchesReadsFromTheStart() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        app.write(lines: 0..<5)
        let checkpoint = try runOnce(app.path).checkpoint

        truncateFile(app.path)
        app.write(lines: 200..<260)                     // longer than the checkpoint's offset
        #expect(fileSize(app.path)! > checkpoint.offset)
        let sender = resumeAndTake(app.path, from: checkpoint)
        #expect(sender.requests == ids(200..<260))
    }

    // MARK: - Case 5: deleted and recreated while stopped, inode reused

    @Test func resumingAfterDeleteAndRecreateWithTheSameInodeReadsFromTheStart() throws {
        let dir = try TailDirectory()
        let path = dir.file("app.log")
        do {
            let app = AppLog(path)
            app.write(lines: 0..<20)
        }
        var checkpoint = try runOnce(path).checkpoint   // the tailer lets go of the file
        try FileManager.default.removeItem(atPath: path)
        let app = AppLog(path)                          // ext4 and tmpfs usually hand the inode back
        app.write(lines: 500..<560)
        // Whether or not the kernel reused it, the checkpoint claims this very inode.
        checkpoint.inode = try #require(inode(path))
        #expect(fileSize(path)! > checkpoint.offset)
        let sender = resumeAndTake(path, from: checkpoint)
        #expect(sender.requests == ids(500..<560))
    }

    // MARK: - Case 6: rotated while stopped

    @Test(arguments: ["app.log.1", "app.log-20261203"])
    func resumingAfterRotationWhileStoppedFinishesTheRotatedFileFirst(rotatedName: String) throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        app.write(lines: 0..<10)
        let checkpoint = try runOnce(app.path).checkpoint

        app.write(lines: 10..<13)                       // written while the shim was down
        // A decoy: another rotated file, older, which must not be read.
        try Data(AppLog.line(900).utf8).write(to: URL(fileURLWithPath: dir.file("app.log.9")))
        try dir.rename("app.log", rotatedName)
        app.reopen()
        app.write(lines: 13..<16)

        let sender = resumeAndTake(app.path, from: checkpoint)
        #expect(sender.requests == ids(10..<16))
        #expect(sender.checkpoint?.inode == inode(app.path))
    }

    @Test func resumingWhileTheRotatedFileIsFollowedByNothingYetWaitsForTheNewOne() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        app.write(lines: 0..<4)
        let checkpoint = try runOnce(app.path).checkpoint
        try dir.rename("app.log", "app.log.1")
        app.write(lines: 4..<6)

        let (sender, tailer) = startTailer(app.path, from: checkpoint)
        pollRounds(tailer)                              // no file at the path yet
        app.write(lines: 6..<8)                         // the app has not reopened yet
        pollRounds(tailer)
        app.reopen()
        app.write(lines: 8..<10)
        pollAndTake(tailer, sender)
        #expect(sender.requests == ids(4..<10))
    }

    @Test func resumingAfterCopytruncateWhileStoppedFinishesTheCopy() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        app.write(lines: 0..<40)                        // more than a full fingerprint
        let checkpoint = try runOnce(app.path).checkpoint
        #expect(checkpoint.fingerprintLength == FileTailer.fingerprintBytes)

        app.write(lines: 40..<45)
        try FileManager.default.copyItem(atPath: app.path, toPath: dir.file("app.log.1"))
        truncateFile(app.path)
        app.write(lines: 45..<50)

        let sender = resumeAndTake(app.path, from: checkpoint)
        #expect(sender.requests == ids(40..<50))
    }

    /// Found by the model test: a checkpoint taken while the file held one short line, the
    /// file then deleted, and an older rotated file that starts with the same line. Taking
    /// that file for the checkpoint's would deliver its lines a second time.
    @Test func aShortCheckpointIsNotTakenForAnotherFileThatStartsAlike() throws {
        let dir = try TailDirectory()
        let older = AppLog(dir.file("app.log.1"))
        older.write("starting:0\n")
        older.write(lines: 0..<30)
        let app = AppLog(dir.file("app.log"))
        app.write("starting:0\n")
        let checkpoint = try runOnce(app.path).checkpoint
        #expect(checkpoint.fingerprintLength < FileTailer.fingerprintBytes)

        try FileManager.default.removeItem(atPath: app.path)
        app.reopen()
        app.write(lines: 100..<103)
        let sender = resumeAndTake(app.path, from: checkpoint)
        #expect(sender.requests == ids(100..<103))
    }

    @Test func compressedRotatedFilesAreIgnored() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        app.write(lines: 0..<10)
        let checkpoint = try runOnce(app.path).checkpoint
        app.write(lines: 10..<13)
        // Named as compressed (its bytes are still plain, so only the name keeps it out).
        try dir.rename("app.log", "app.log.1.gz")
        app.reopen()
        app.write(lines: 13..<16)

        let sender = resumeAndTake(app.path, from: checkpoint)
        #expect(sender.requests == ids(13..<16))
    }

    // MARK: - Case 7: a partial last line

    @Test func aPartialLineWaitsForItsNewlineAcrossPolls() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        let (sender, tailer) = startTailer(app.path)
        app.write("r0:0\nr1:")
        tailer.poll()
        #expect(sender.take().map(\.request) == ["r0"])
        #expect(sender.checkpoint?.offset == 5)         // the start of the unfinished line
        app.write("1")
        tailer.poll()
        #expect(sender.take().isEmpty)
        app.write("5\nr2:2\n")
        tailer.poll()
        let got = sender.take()
        #expect(got.map(\.request) == ["r1", "r2"])
        #expect(got.first?.valueMicros == 15_000)
        #expect(sender.checkpoint?.offset == fileSize(app.path))
    }

    @Test func aPartialLineIsReadWholeAfterARestart() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        app.write("r0:0\nr1:1")
        let (first, checkpoint) = try runOnce(app.path)
        #expect(checkpoint.offset == 5)

        app.write("5\nr2:2\n")
        let sender = resumeAndTake(app.path, from: checkpoint)
        #expect(first.requests + sender.requests == ["r0", "r1", "r2"])
        #expect(sender.delivered.first?.valueMicros == 15_000)
    }

    // MARK: - Case 8: a normal resume

    @Test func resumingContinuesExactlyAtTheCheckpoint() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        app.write(lines: 0..<100)
        let first = Sender(path: app.path)
        do {
            let tailer = FileTailer(path: app.path, app: "a", queue: first.queue, resumeFrom: nil)
            tailer.poll()
            first.take()
            app.write(lines: 100..<110)
            tailer.poll()                               // read, but never taken: lost with the process
        }
        let checkpoint = try #require(first.checkpoint)
        app.write(lines: 110..<120)

        let sender = resumeAndTake(app.path, from: checkpoint)
        #expect(first.requests == ids(0..<100))
        #expect(sender.requests == ids(100..<120))
    }

    // MARK: - Chunks

    /// A sender taking whole chunks gets a position for every frame it fills.
    @Test func everyChunkOfAtMostMaxLinesCarriesThePositionAfterIt() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        let (sender, tailer) = startTailer(app.path)
        let n = FileTailer.maxLinesPerChunk
        app.write(lines: 0..<(2 * n + 10))
        tailer.poll()
        var offset: Int64 = 0
        for range in [0..<n, n..<(2 * n), (2 * n)..<(2 * n + 10)] {
            let taken = sender.queue.take(max: n)
            let (samples, positions) = (taken.samples, taken.positions)
            #expect(samples.map(\.request) == ids(range))
            offset += Int64(range.map { AppLog.line($0).utf8.count }.reduce(0, +))
            #expect(positions.map(\.offset) == [offset])
        }
    }

    // MARK: - Robustness

    @Test func rejectedLinesMoveThePositionToo() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        let (sender, tailer) = startTailer(app.path)
        app.write(lines: 0..<2)
        tailer.poll()
        sender.take()
        app.write("no colon here\nbad:value\n")
        tailer.poll()
        #expect(sender.take().isEmpty)
        #expect(sender.checkpoint?.offset == fileSize(app.path))
        #expect(sender.queue.snapshot.lineErrors.total == 2)
    }

    @Test func aLineLongerThanOneMiBIsDroppedAndTheNextLinesAreRead() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        let (sender, tailer) = startTailer(app.path)
        app.write(lines: 0..<1)
        let long = String(repeating: "x", count: FileTailer.maxLineBytes / 4)
        for _ in 0..<5 {
            app.write(long)
            tailer.poll()
        }
        #expect(tailer.droppedLongLines == 1)
        sender.take()
        let lineStart = Int64(AppLog.line(0).utf8.count)
        #expect(sender.checkpoint?.offset == lineStart)  // a restart would skip it again
        app.write(long + "\n")
        app.write(lines: 1..<3)
        tailer.poll()
        sender.take()
        #expect(sender.requests == ids(0..<3))
        #expect(tailer.droppedLongLines == 1)
        #expect(sender.checkpoint?.offset == fileSize(app.path))
    }

    /// Errors (here: a directory where the file should be, since tests may run as root and
    /// ignore permissions) are logged and retried; the file is read once it is readable.
    @Test func anUnreadablePathIsRetriedUntilItBecomesAFile() throws {
        let dir = try TailDirectory()
        let path = dir.file("app.log")
        let (sender, tailer) = startTailer(path)
        pollRounds(tailer)                              // missing
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        pollRounds(tailer)                              // not a regular file
        #expect(sender.take().isEmpty)
        try FileManager.default.removeItem(atPath: path)
        let app = AppLog(path)
        app.write(lines: 0..<3)
        pollAndTake(tailer, sender)
        #expect(sender.requests == ids(0..<3))
    }

    @Test(.enabled(if: getuid() != 0, "root reads any file"))
    func anUnreadableFileIsRetriedUntilItsPermissionsAllowIt() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        app.write(lines: 0..<3)
        chmod(app.path, 0)
        let (sender, tailer) = startTailer(app.path)
        pollRounds(tailer)
        #expect(sender.take().isEmpty)
        chmod(app.path, 0o644)
        pollAndTake(tailer, sender)
        #expect(sender.requests == ids(0..<3))
    }

    /// When the sender is behind, lines stay in the file: nothing is dropped.
    @Test func aFullQueueLeavesLinesInTheFile() throws {
        let dir = try TailDirectory()
        let app = AppLog(dir.file("app.log"))
        let (sender, tailer) = startTailer(app.path, capacity: 20_000)
        app.write(lines: 0..<30_000)
        tailer.poll()
        #expect(sender.queue.pendingCount < 30_000)
        for _ in 0..<20 {
            sender.take()
            tailer.poll()
        }
        sender.take()
        #expect(sender.requests == ids(0..<30_000))
        #expect(sender.queue.snapshot.apps["a"]?.dropped ?? 0 == 0)
    }
}
