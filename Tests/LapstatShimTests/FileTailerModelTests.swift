import Foundation
import LapstatCore
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import LapstatShim

/// Random runs against a model of what the app wrote: appends (sometimes stopping mid-line),
/// rotations by rename, create and copytruncate, plain truncations, rotated files being
/// compressed once read (logrotate's `delaycompress`), and restarts (the tailer and the queue's untaken samples are dropped, a new
/// tailer starts from the last position `take` reported, and the files may change while it is
/// down). Afterwards no line may have been delivered twice, and the lines not delivered must
/// be exactly those the model says are lost:
///
/// - a truncation without a copy beside the file loses what was written since the last poll,
///   and so does one with a copy when the tailer had read less than a full fingerprint of it
///   (a copy has another inode, and a short fingerprint alone does not identify it);
/// - a restart loses what was not delivered yet of content that no longer exists under the
///   path or a sibling's name (deleted, truncated away, compressed), and of copies when the
///   checkpoint's fingerprint is short, for the same reason.
///
/// A line the app gives up half-written (it reopens elsewhere, or its file is truncated under
/// it) leaves fragments, each read as one line; those that parse may be delivered, once.
///
/// The model's one assumption, as in production: rotations are rarer than checkpoints, so a
/// file being rotated away (or copied) has been checkpointed at least once.
@Suite struct FileTailerModelTests {
    /// LAPSTAT_MODEL_SEEDS=`a-b` or `a,b,c` replays or widens the run (LAPSTAT_MODEL_STEPS its length).
    static let seeds: [UInt64] = {
        guard let text = ProcessInfo.processInfo.environment["LAPSTAT_MODEL_SEEDS"] else { return Array(1...16) }
        let bounds = text.split(separator: "-").compactMap { UInt64($0) }
        return bounds.count == 2 ? Array(bounds[0]...bounds[1]) : text.split(separator: ",").compactMap { UInt64($0) }
    }()
    static let steps = ProcessInfo.processInfo.environment["LAPSTAT_MODEL_STEPS"].flatMap { Int($0) } ?? 400

    @Test(arguments: seeds)
    func randomRotationsTruncationsAndRestartsLoseOnlyWhatIsPredictedAndDuplicateNothing(seed: UInt64) throws {
        let model = try TailModel(seed: seed)
        for _ in 0..<Self.steps { try model.step() }
        try model.finish()
        model.verify()
    }
}

final class TailModel {
    /// What one file holds, as the model knows it: the ids of its complete lines.
    final class Content {
        var ids: [Int] = []
        /// Lines written since the tailer's last poll.
        var unseen: [Int] = []
        /// Under the path or a sibling name that is not compressed: a restarted tailer may find it.
        var reachable = true
        /// Its sibling name once rotated (nil while at the path, or once gone).
        var siblingName: String?
        /// Made by copytruncate: another inode than the file it was copied from.
        var isCopy = false
    }

    let dir: TailDirectory
    let path: String
    var rng: SplitMix64
    let sender: Sender
    /// nil while the shim is down, so it holds no descriptor (inodes can then be reused).
    var tailer: FileTailer?
    let app: AppLog
    /// The content the app's descriptor writes to, and the one at the path.
    var appContent = Content()
    var pathContent: Content
    var contents: [Content] = []
    /// A line the app has begun: its bytes and how many are written.
    var pending: (id: Int, bytes: [UInt8], written: Int)?
    var nextID = 0
    var nextName = 0
    /// Size of the path's file at the last poll (the tailer reads to the end at each poll).
    var pathSizeAtLastPoll: Int64 = 0
    var written: Set<Int> = []
    var allowedLoss: Set<Int> = []
    /// Samples that fragments of given-up lines parse to (`request=micros`), each allowed once.
    var allowedFragments: [String: Int] = [:]
    let parser = LineParser(defaultApp: "model")
    var trace: [String] = []
    var counts: [String: Int] = [:]

    init(seed: UInt64) throws {
        rng = SplitMix64(seed: seed)
        dir = try TailDirectory()
        path = dir.file("app.log")
        app = AppLog(path)
        pathContent = appContent
        contents = [appContent]
        sender = Sender(path: path)
        tailer = FileTailer(path: path, app: "model", queue: sender.queue, resumeFrom: nil)
    }

    func note(_ event: String) {
        trace.append(event)
        counts[event.split(separator: " ").first.map(String.init) ?? event, default: 0] += 1
    }

    func step() throws {
        switch rng.below(100) {
        case 0..<35: appendLines(to: appContent)
        case 35..<60: poll(); if rng.below(2) == 0 { take() }
        case 60..<68: take()
        case 68..<74: try rotateByRename()
        case 74..<79: try rotateByCreate()
        case 79..<84: try copyTruncate()
        case 84..<88: truncateInPlace()
        case 88..<90: try compressASibling()
        default: try restart()
        }
    }

    // MARK: - The app

    /// A few complete lines, and sometimes the start of the next one, cut anywhere before
    /// its newline.
    func appendLines(to content: Content) {
        let first = nextID
        for _ in 0..<(1 + rng.below(4)) { writeWholeLine(to: content) }
        var cutNote = ""
        if rng.below(3) == 0 {
            finishPending(in: content)
            let id = nextID
            nextID += 1
            let bytes = Array(AppLog.line(id).utf8)
            let cut = 1 + rng.below(bytes.count - 1)
            app.write(String(decoding: bytes[..<cut], as: UTF8.self))
            pending = (id, bytes, cut)
            cutNote = ", r\(id) cut at \(cut)"
        }
        note("append r\(first)..<r\(nextID)\(cutNote)")
    }

    /// A piece of a given-up line is read as a line of its own: what it parses to may come.
    func expectFragment(_ bytes: ArraySlice<UInt8>) {
        let line = String(decoding: bytes.filter { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        if case .success(let s) = parser.parse(line, receivedAtMillis: 0) {
            allowedFragments["\(s.request)=\(s.valueMicros)", default: 0] += 1
        }
    }

    func writeWholeLine(to content: Content) {
        finishPending(in: content)
        let id = nextID
        nextID += 1
        app.write(AppLog.line(id))
        completed(id, in: content)
    }

    func finishPending(in content: Content) {
        guard let p = pending else { return }
        app.write(String(decoding: p.bytes[p.written...], as: UTF8.self))
        pending = nil
        completed(p.id, in: content)
    }

    func completed(_ id: Int, in content: Content) {
        written.insert(id)
        content.ids.append(id)
        content.unseen.append(id)
    }

    /// The app gives up the line it began (it reopens elsewhere, or its file was cut under
    /// it): the fragment stays behind and the line is not one it wrote.
    func abandonPending() {
        guard let p = pending else { return }
        expectFragment(p.bytes[..<p.written])
        pending = nil
        note("abandon")
    }

    /// The app's next write after a truncation lands at the new start: its unfinished
    /// line is broken in two, neither a sample.
    func breakPending() {
        guard let p = pending else { return }
        app.write(String(decoding: p.bytes[p.written...], as: UTF8.self))
        expectFragment(p.bytes[..<p.written])
        expectFragment(p.bytes[p.written...])
        pending = nil
        note("broken-line")
    }

    /// At a rotation the app either finishes its line in the old file or abandons it.
    func finishOrAbandonPending() {
        if rng.below(2) == 0 { finishPending(in: appContent) } else { abandonPending() }
    }

    func reopen() {
        app.reopen()
        let fresh = Content()
        contents.append(fresh)
        appContent = fresh
        pathContent = fresh
        pathSizeAtLastPoll = 0
    }

    // MARK: - The shim

    func poll() {
        tailer?.poll()
        for c in contents { c.unseen.removeAll() }
        pathSizeAtLastPoll = fileSize(path) ?? 0
        note("poll")
    }

    func take() {
        let got = sender.take()
        let cp = sender.checkpoint.map { "inode \($0.inode) fingerprint \($0.fingerprintLength) offset \($0.offset)" } ?? "none"
        note("take \(got.map(\.request)) checkpoint \(cp)")
    }

    /// Rotations are rarer than checkpoints: the file about to be rotated has been read and
    /// checkpointed (given a complete line to checkpoint).
    func checkpointCurrentFile() {
        guard (fileSize(path) ?? 0) > 0 else { return }
        finishPending(in: appContent)
        for _ in 0..<4 {
            poll()
            take()
            if checkpointNamesPathFile() { return }
        }
        Issue.record("the checkpoint does not reach the current file: \(String(describing: sender.checkpoint))")
    }

    func checkpointNamesPathFile() -> Bool {
        guard let cp = sender.checkpoint, cp.inode == inode(path) else { return false }
        let bytes = fileBytes(path)
        return bytes.count >= cp.fingerprintLength
            && FileTailer.fingerprint(bytes.prefix(cp.fingerprintLength)) == cp.fingerprint
    }

    func siblingName() -> String {
        nextName += 1
        return rng.below(2) == 0 ? "app.log.\(nextName)" : "app.log-2026\(1000 + nextName)"
    }

    // MARK: - Rotations and truncations

    /// logrotate's default: rename, (maybe) create an empty file, the app reopens later and
    /// writes its old descriptor until then.
    func rotateByRename() throws {
        guard (fileSize(path) ?? 0) > 0 else { return }     // notifempty
        checkpointCurrentFile()
        let name = siblingName()
        try FileManager.default.moveItem(atPath: path, toPath: dir.file(name))
        pathContent.siblingName = name
        note("rename \(name)")
        for _ in 0..<rng.below(3) {
            appendLines(to: appContent)
            if rng.below(2) == 0 { poll() }
        }
        if rng.below(2) == 0 {
            #expect(FileManager.default.createFile(atPath: path, contents: nil))
            if rng.below(2) == 0 { appendLines(to: appContent); poll() }
        }
        finishOrAbandonPending()
        reopen()
    }

    /// The path is deleted and the app creates a new file at it.
    func rotateByCreate() throws {
        guard (fileSize(path) ?? 0) > 0 else { return }
        checkpointCurrentFile()
        try FileManager.default.removeItem(atPath: path)
        pathContent.reachable = false
        note("delete")
        if rng.below(2) == 0 { appendLines(to: appContent) }
        finishOrAbandonPending()
        reopen()
    }

    /// copytruncate with the copy beside the file: nothing may be lost, the tailer finishes
    /// the copy.
    func copyTruncate() throws {
        guard (fileSize(path) ?? 0) > 0 else { return }
        checkpointCurrentFile()
        if rng.below(2) == 0 { appendLines(to: appContent) }   // after the last read
        let name = "app.log.c\(nextName)"
        nextName += 1
        try FileManager.default.copyItem(atPath: path, toPath: dir.file(name))
        truncateFile(path)
        let copy = Content()
        copy.ids = pathContent.ids
        copy.siblingName = name
        copy.isCopy = true
        contents.append(copy)
        if pathSizeAtLastPoll < FileTailer.fingerprintBytes {
            allowedLoss.formUnion(pathContent.unseen)
        }
        pathContent.ids.removeAll()
        pathContent.unseen.removeAll()
        pathSizeAtLastPoll = 0
        breakPending()
        note("copytruncate \(name)")
    }

    /// Truncation with no copy in sight (`> app.log`, or copytruncate into another
    /// directory): what was written since the last poll is lost, a race nothing can close.
    func truncateInPlace() {
        guard (fileSize(path) ?? 0) > 0 else { return }
        if rng.below(2) == 0 { appendLines(to: appContent) }
        truncateFile(path)
        allowedLoss.formUnion(pathContent.unseen)
        discardPathContent()
        breakPending()
        note("truncate")
    }

    /// The path's lines are gone for good (truncated away): kept as unreachable content so a
    /// restart may lose what of them was not delivered.
    func discardPathContent() {
        let gone = Content()
        gone.ids = pathContent.ids
        gone.reachable = false
        contents.append(gone)
        pathContent.ids.removeAll()
        pathContent.unseen.removeAll()
        pathSizeAtLastPoll = 0
    }

    /// logrotate's `compress` with `delaycompress`: a rotated file, once long read.
    func compressASibling() throws {
        let delivered = Set(sender.requests)
        guard let c = contents.first(where: { c in
                  c.reachable && c.siblingName != nil && c.ids.allSatisfy { delivered.contains("r\($0)") }
              }),
              let name = c.siblingName else { return }
        try FileManager.default.moveItem(atPath: dir.file(name), toPath: dir.file(name + ".gz"))
        c.siblingName = nil
        c.reachable = false
        note("compress \(name)")
    }

    // MARK: - Restarts

    func restart() throws {
        tailer = nil
        sender.restart()                                    // untaken samples die with the process
        note("restart")
        // While the shim is down.
        switch rng.below(6) {
        case 0:
            appendLines(to: appContent)
        case 1 where (fileSize(path) ?? 0) > 0 && checkpointNamesPathFile():
            // Rotated while stopped; needs the same checkpoint as any rotation.
            let name = siblingName()
            try FileManager.default.moveItem(atPath: path, toPath: dir.file(name))
            pathContent.siblingName = name
            if rng.below(2) == 0 { appendLines(to: appContent) }
            finishOrAbandonPending()
            reopen()
            note("stopped-rename \(name)")
        case 2 where (fileSize(path) ?? 0) > 0:
            truncateFile(path)
            discardPathContent()
            breakPending()
            if rng.below(2) == 0 { appendLines(to: appContent) }
            note("stopped-truncate")
        case 3 where (fileSize(path) ?? 0) > 0:
            // Deleted and created again; with no descriptor left open the inode is often reused.
            let before = inode(path)
            abandonPending()
            try FileManager.default.removeItem(atPath: path)
            pathContent.reachable = false
            reopen()
            appendLines(to: appContent)
            note(inode(path) == before ? "stopped-recreate-same-inode" : "stopped-recreate")
        default:
            break
        }
        let delivered = Set(sender.requests)
        let shortCheckpoint = (sender.checkpoint?.fingerprintLength ?? 0) < FileTailer.fingerprintBytes
        for c in contents where !c.reachable || (c.isCopy && shortCheckpoint) {
            allowedLoss.formUnion(c.ids.filter { !delivered.contains("r\($0)") })
        }
        // What the old tailer had read but not handed on is to be read again by the new one.
        for c in contents { c.unseen = c.ids.filter { !delivered.contains("r\($0)") } }
        tailer = FileTailer(path: path, app: "model", queue: sender.queue, resumeFrom: sender.checkpoint)
    }

    // MARK: - The end

    func finish() throws {
        finishPending(in: appContent)
        for _ in 0..<4 {
            poll()
            take()
        }
    }

    func verify() {
        var seen: [Int: Int] = [:]
        var foreign: [String] = []
        var fragments = allowedFragments
        for s in sender.delivered {
            guard s.request.first == "r", let id = Int(s.request.dropFirst()), written.contains(id),
                  s.valueMicros == UInt64(id) * 1000 else {
                let key = "\(s.request)=\(s.valueMicros)"
                if fragments[key, default: 0] > 0 { fragments[key]! -= 1 } else { foreign.append(key) }
                continue
            }
            seen[id, default: 0] += 1
        }
        let twice = seen.filter { $0.value > 1 }.keys.sorted()
        let missing = written.subtracting(seen.keys)
        let unexpected = missing.subtracting(allowedLoss).sorted()
        let context = "events: \(counts.sorted { $0.key < $1.key }); last events: \(trace.suffix(40))"
        #expect(foreign.isEmpty, "samples the app never wrote (or twice from one fragment): \(foreign.prefix(20)); \(context)")
        #expect(twice.isEmpty, "delivered twice: \(twice.prefix(20)); \(context)")
        #expect(unexpected.isEmpty, "lost, not predicted: \(unexpected.prefix(20)); \(context)")
        // And the prediction is exact: whatever could be read again was.
        let recovered = allowedLoss.subtracting(missing).sorted()
        #expect(recovered.isEmpty, "predicted lost but delivered (the model is off): \(recovered.prefix(20)); \(context)")
        // The run exercised what it is about.
        #expect(written.count > 200)
        #expect(counts["restart", default: 0] > 0)
        #expect(counts["rename", default: 0] + counts["delete", default: 0] + counts["copytruncate", default: 0] > 0)
    }
}
