import Foundation
import GatehouseCore
import GatehouseRecording
import GatehouseServices
import Logging
import NIOCore
import NIOPosix
import NIOSSH

/// One SSH session relayed from a person to a target and recorded. The person's channel and the
/// target's channel each carry a thin handler that hands every event here; both live on the
/// person's connection's event loop, so this object needs no locks.
///
/// Relayed faithfully: pty-req, env (an allowlist), shell, exec, subsystem, window-change,
/// signal, stdin end-of-file, exit-status and exit-signal, stdout and stderr. Requests that want
/// a reply are answered in order, with the target's answer. The program starts only after the
/// session is recorded in the store (audited) and its recording file is open; a recording that
/// cannot be written ends the session. Reads on one side happen only while the other side can
/// take writes, so a slow end slows the fast one instead of filling memory.
/// @unchecked Sendable: confined to the connection's event loop.
final class SessionRelay: @unchecked Sendable {
    private enum Phase { case setup, starting, running, ended }
    private enum Reply {
        case forwarded
        case decided(Bool)
    }
    private enum Queued {
        case data(SSHChannelData)
        case event(Any)
    }

    static let environmentAllowlist: Set<String> = ["LANG", "LANGUAGE", "TZ", "COLORTERM"]

    let connection: BastionConnection
    let grant: BastionService.Grant
    let inbound: any Channel
    let outbound: any Channel
    fileprivate var person: ChannelHandlerContext?
    fileprivate var target: ChannelHandlerContext?
    private var phase = Phase.setup
    private var queue: [Queued] = []
    private var replies = CircularBuffer<Reply>()
    private var pty: SSHChannelRequestEvent.PseudoTerminalRequest?
    private var width = 80, height = 24
    private var recorder: SessionRecorder?
    private var record: BastionSessionRecord?
    private var recordInput = true
    private var exitStatus: Int?
    private var exitSignal: String?
    private var endedBy: String?
    private var bytesIn: Int64 = 0
    private var bytesOut: Int64 = 0
    private var startedAt = NIODeadline.now()
    private var flushTask: RepeatedTask?
    /// Completes when everything sent to the person so far has left for the network. Data waits
    /// for the window, requests do not: exit-status and EOF are chained behind the data so the
    /// person sees output, exit status, end of file, in the target's order.
    private var personTail: EventLoopFuture<Void>?
    /// End-of-file already received from each side. swift-nio-ssh 0.15.1 refuses to send EOF on
    /// a channel whose peer has sent EOF ("Sent EOF out of sequence"), so an EOF is not relayed
    /// to a side that has ended its own input; the close that follows carries it.
    private var personEOF = false
    private var targetEOF = false
    fileprivate var personPendingRead = false
    fileprivate var targetPendingRead = false

    private init(connection: BastionConnection, grant: BastionService.Grant, inbound: any Channel, outbound: any Channel) {
        self.connection = connection
        self.grant = grant
        self.inbound = inbound
        self.outbound = outbound
    }

    static func link(inbound: any Channel, outbound: any Channel, connection: BastionConnection, grant: BastionService.Grant) throws {
        let relay = SessionRelay(connection: connection, grant: grant, inbound: inbound, outbound: outbound)
        try inbound.pipeline.syncOperations.addHandler(PersonSide(relay: relay))
        try outbound.pipeline.syncOperations.addHandler(TargetSide(relay: relay))
        inbound.read()
        outbound.read()
    }

    private var now: Double { Double((NIODeadline.now() - self.startedAt).nanoseconds) / 1e9 }

    // MARK: from the person

    fileprivate func fromPerson(_ data: SSHChannelData) {
        // Nothing reaches the target before its program starts recorded, or after the session ended.
        guard self.phase == .running || self.phase == .starting else { return }
        if self.phase == .starting { return self.queue.append(.data(data)) }
        guard case .channel = data.type, case .byteBuffer(let buffer) = data.data else { return }
        self.bytesIn += Int64(buffer.readableBytes)
        if self.recordInput, let recorder = self.recorder {
            do { try recorder.record(.input, buffer, at: self.now) } catch { return self.recordingFailed(error) }
        }
        self.target?.write(NIOAny(data), promise: nil)
    }

    fileprivate func personReadComplete(_ context: ChannelHandlerContext) {
        self.target?.flush()
        // While the session starts, reading stops (the SSH window then holds the person back),
        // so what waits in the queue stays bounded.
        if self.outbound.isWritable && self.phase != .starting { context.read() } else { self.personPendingRead = true }
    }

    fileprivate func personEvent(_ event: Any) {
        guard self.phase != .ended else { return }
        if self.phase == .starting { return self.queue.append(.event(event)) }
        switch event {
        case let e as SSHChannelRequestEvent.PseudoTerminalRequest:
            self.pty = e
            self.width = e.terminalCharacterWidth
            self.height = e.terminalRowHeight
            self.forward(e, wantReply: e.wantReply)
        case let e as SSHChannelRequestEvent.EnvironmentRequest:
            if Self.environmentAllowlist.contains(e.name) || e.name.hasPrefix("LC_") {
                self.forward(e, wantReply: e.wantReply)
            } else {
                self.decide(false, wantReply: e.wantReply)
            }
        case let e as SSHChannelRequestEvent.ShellRequest:
            self.begin(e, wantReply: e.wantReply, mode: "shell", command: nil)
        case let e as SSHChannelRequestEvent.ExecRequest:
            self.begin(e, wantReply: e.wantReply, mode: "exec", command: e.command)
        case let e as SSHChannelRequestEvent.SubsystemRequest:
            self.begin(e, wantReply: e.wantReply, mode: "subsystem", command: e.subsystem)
        case let e as SSHChannelRequestEvent.WindowChangeRequest:
            self.width = e.terminalCharacterWidth
            self.height = e.terminalRowHeight
            self.note(.resize, "\(e.terminalCharacterWidth)x\(e.terminalRowHeight)")
            self.forward(e, wantReply: false)
        case let e as SSHChannelRequestEvent.SignalRequest:
            self.note(.marker, "signal \(e.signal)")
            self.forward(e, wantReply: false)
        case let e as ChannelEvent where e == .inputClosed:
            self.personEOF = true
            if !self.targetEOF { self.target?.close(mode: .output, promise: nil) }
        default:
            break  // xon-xoff and the like: nothing to relay
        }
    }

    fileprivate func personClosed() {
        self.target?.flush()
        if self.phase != .ended, self.endedBy == nil, self.exitStatus == nil, self.exitSignal == nil {
            self.endedBy = "the client closed the session"
        }
        self.outbound.close(promise: nil)
        if self.phase == .setup { self.phase = .ended }
    }

    // MARK: from the target

    fileprivate func fromTarget(_ data: SSHChannelData) {
        guard self.phase != .ended, case .byteBuffer(let buffer) = data.data else { return }
        self.bytesOut += Int64(buffer.readableBytes)
        if self.recordInput, let recorder = self.recorder, self.phase == .running {
            do { try recorder.record(.output, buffer, at: self.now) } catch { return self.recordingFailed(error) }
        }
        guard let person = self.person else { return }
        let written = person.eventLoop.makePromise(of: Void.self)
        person.write(NIOAny(data), promise: written)
        self.personTail = written.futureResult
    }

    /// Runs `body` once everything queued for the person before it has been sent.
    private func afterPersonWrites(_ body: @escaping () -> EventLoopFuture<Void>) {
        self.person?.flush()
        let loop = self.inbound.eventLoop
        let previous = self.personTail ?? loop.makeSucceededVoidFuture()
        self.personTail = previous.flatMapWithEventLoop { _, _ in body() }.recover { _ in }
    }

    private func sendToPerson(_ event: Any) {
        self.afterPersonWrites { [weak self] in
            guard let person = self?.person else { return self?.inbound.eventLoop.makeSucceededVoidFuture() ?? ImmediateFailure.future }
            let promise = person.eventLoop.makePromise(of: Void.self)
            person.triggerUserOutboundEvent(event, promise: promise)
            return promise.futureResult
        }
    }

    fileprivate func targetReadComplete(_ context: ChannelHandlerContext) {
        self.person?.flush()
        if self.inbound.isWritable { context.read() } else { self.targetPendingRead = true }
    }

    fileprivate func targetEvent(_ event: Any) {
        switch event {
        case let e as SSHChannelRequestEvent.ExitStatus:
            self.exitStatus = e.exitStatus
            self.sendToPerson(e)
        case let e as SSHChannelRequestEvent.ExitSignal:
            self.exitSignal = e.signalName
            self.sendToPerson(e)
        case is ChannelSuccessEvent:
            self.answer(true)
        case is ChannelFailureEvent:
            self.answer(false)
        case let e as ChannelEvent where e == .inputClosed:
            self.targetEOF = true
            self.afterPersonWrites { [weak self] in
                guard let self, !self.personEOF, let person = self.person else {
                    return self?.inbound.eventLoop.makeSucceededVoidFuture() ?? ImmediateFailure.future
                }
                let promise = person.eventLoop.makePromise(of: Void.self)
                person.close(mode: .output, promise: promise)
                return promise.futureResult
            }
        default:
            break
        }
    }

    /// The target's channel is gone: seal the recording, audit it, then close the person's channel.
    fileprivate func targetClosed() {
        // What the target sent last may still be written but not flushed (its read batch ended with the close).
        self.person?.flush()
        let inbound = self.inbound
        guard self.phase != .ended else {
            (self.personTail ?? inbound.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in inbound.close(promise: nil) }
            return
        }
        let wasStarting = self.phase == .starting
        self.phase = .ended
        self.flushTask?.cancel()
        guard let recorder = self.recorder, let record = self.record, !wasStarting else {
            (self.personTail ?? inbound.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in inbound.close(promise: nil) }
            return
        }
        let registry = self.connection.context.service.registry
        registry.beginSealing()
        registry.unregister(id: record.id)
        let ending = self.ending()
        let service = self.connection.context.service
        let trailer = RecordingTrailer(
            ended: Date().timeIntervalSince1970, exitStatus: self.exitStatus, exitSignal: self.exitSignal, endedBy: self.endedBy,
            bytesIn: Int(self.bytesIn), bytesOut: Int(self.bytesOut))
        let promise = self.inbound.eventLoop.makePromise(of: Void.self)
        do {
            // fsync on the thread pool: a slow disk must not stall the other sessions of this loop.
            let sealing = try recorder.seal(trailer)
            NIOThreadPool.singleton.runIfActive(eventLoop: inbound.eventLoop) { try sealing.sync() }.whenComplete { result in
                switch result {
                case .success(let (sha256, size)):
                    promise.completeWithTask { try await service.sealed(record, ending: ending, sha256: sha256, bytes: size) }
                case .failure(let error):
                    promise.completeWithTask { try await service.recordingFailed(record, ending: ending, reason: "\(error)") }
                }
            }
        } catch {
            recorder.abandon()
            let reason = "\(error)"
            promise.completeWithTask { try await service.recordingFailed(record, ending: ending, reason: reason) }
        }
        let logger = self.connection.logger
        let tail = self.personTail ?? inbound.eventLoop.makeSucceededVoidFuture()
        promise.futureResult.whenComplete { result in
            registry.endSealing()
            if case .failure(let error) = result {
                // A seal the store could not take is retried with the heartbeat (BastionService.sealed).
                let waiting = registry.deferredSeals.contains(record.id)
                logger.log(
                    level: waiting ? .warning : .error,
                    waiting ? "session end not recorded yet; retried with the heartbeat" : "session end not recorded",
                    metadata: ["session": "\(record.id)", "error": "\(error)"])
            }
            tail.whenComplete { _ in inbound.close(promise: nil) }
        }
    }

    // MARK: requests and replies

    private func forward(_ request: Any, wantReply: Bool) {
        self.target?.triggerUserOutboundEvent(request, promise: nil)
        if wantReply { self.replies.append(.forwarded) }
    }

    private func decide(_ ok: Bool, wantReply: Bool) {
        guard wantReply else { return }
        self.replies.append(.decided(ok))
        self.drainReplies()
    }

    private func answer(_ ok: Bool) {
        guard case .forwarded? = self.replies.first else { return }
        self.replies.removeFirst()
        self.person?.triggerUserOutboundEvent(ok ? ChannelSuccessEvent() : ChannelFailureEvent(), promise: nil)
        self.drainReplies()
    }

    private func drainReplies() {
        while case .decided(let ok)? = self.replies.first {
            self.replies.removeFirst()
            self.person?.triggerUserOutboundEvent(ok ? ChannelSuccessEvent() : ChannelFailureEvent(), promise: nil)
        }
    }

    // MARK: the session's program

    /// Records the session (store, audit, file), then lets the program start.
    private func begin(_ request: Any, wantReply: Bool, mode: String, command: String?) {
        guard self.phase == .setup else { return self.decide(false, wantReply: wantReply) }
        self.phase = .starting
        let id = Identifier.make(using: self.connection.context.service.random)
        let service = self.connection.context.service
        let grant = self.grant
        let loop = self.inbound.eventLoop
        let promise = loop.makePromise(of: BastionService.Started.self)
        promise.completeWithTask { try await service.start(grant, id: id, mode: mode, command: command) }
        promise.futureResult.whenComplete { result in
            switch result {
            case .failure(let error):
                self.phase = .setup
                self.refuse("the session could not be started: \(Self.describe(error))", wantReply: wantReply)
            case .success(let started):
                self.started(started, request: request, wantReply: wantReply, mode: mode, command: command)
            }
        }
    }

    private func started(_ started: BastionService.Started, request: Any, wantReply: Bool, mode: String, command: String?) {
        let record = started.record
        let service = self.connection.context.service
        guard self.phase == .starting, self.inbound.isActive, self.outbound.isActive else {
            // The person (or the target) left while the session was being recorded as started:
            // nothing ran; the row is closed and that is audited.
            self.phase = .ended
            let ending = self.ending()
            let done = self.inbound.eventLoop.makePromise(of: Void.self)
            done.completeWithTask {
                try await service.recordingFailed(record, ending: ending, reason: "the connection ended before the program started; nothing ran")
            }
            self.outbound.close(promise: nil)
            self.inbound.close(promise: nil)
            return
        }
        self.record = record
        // Only sftp's binary protocol is recorded as its byte counts; any other subsystem, and
        // sftp under a force-command (which OpenSSH runs instead), is recorded like exec.
        self.recordInput = !(mode == "subsystem" && command == "sftp" && self.grant.forceCommand == nil)
        let header = RecordingHeader(
            session: record.id, user: record.username, login: record.login, host: record.host, source: record.source, mode: mode,
            command: command, term: self.pty?.term, width: self.width, height: self.height, started: record.startedAt.timeIntervalSince1970)
        do {
            self.recorder = try SessionRecorder(
                directory: self.connection.context.recordings,
                started: BastionStartInfo(header: header, dataKey: started.dataKey, sealedKey: started.sealedKey))
        } catch {
            // No recording, no session: refused, and the failure audited.
            self.phase = .ended
            let service = self.connection.context.service
            let ending = self.ending()
            let reason = Self.describe(error)
            let done = self.inbound.eventLoop.makePromise(of: Void.self)
            done.completeWithTask { try await service.recordingFailed(record, ending: ending, reason: reason) }
            done.futureResult.whenComplete { _ in self.refuse("the session cannot be recorded (\(reason)), so it is refused", wantReply: wantReply) }
            return
        }
        // Only a file transfer's output is summarized (its input, like every session's, is kept).
        self.recorder?.binary = self.pty != nil ? .asText : Self.isFileTransfer(mode: mode, command: command) ? .summarize : .summarizeBulk
        self.startedAt = NIODeadline.now()
        let loop = self.inbound.eventLoop
        self.connection.context.service.registry.register(
            .init(id: record.id, userID: record.userID, keyFingerprint: self.grant.identity.keyFingerprint) { reason in
                loop.execute { self.terminate(reason) }
            })
        self.flushTask = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            guard self.phase == .running, let recorder = self.recorder else { return }
            do { try recorder.flush() } catch { self.recordingFailed(error) }
        }
        self.phase = .running
        if mode == "subsystem" { self.note(.marker, "subsystem \(command ?? "")") }
        self.forward(request, wantReply: wantReply)
        let queued = self.queue
        self.queue = []
        for item in queued {
            switch item {
            case .data(let data): self.fromPerson(data)
            case .event(let event): self.personEvent(event)
            }
        }
        self.target?.flush()
        if self.personPendingRead && self.outbound.isWritable {
            self.personPendingRead = false
            self.inbound.read()
        }
    }

    /// Ends a live session (an administrator, offboarding, a locked account): the person is told
    /// why; the recording is sealed when the target's channel has closed.
    func terminate(_ reason: String) {
        guard self.phase == .running || self.phase == .starting else { return }
        self.endedBy = reason
        self.note(.marker, "ended: \(reason)")
        self.tell("\r\ngatehouse: session ended: \(reason)\r\n")
        self.outbound.close(promise: nil)
        let inbound = self.inbound
        inbound.close(promise: nil)
        // The whole connection goes too, so no new session starts on it before the checks catch up.
        inbound.eventLoop.scheduleTask(in: .milliseconds(200)) { inbound.parent?.close(promise: nil) }
    }

    private func recordingFailed(_ error: any Error) {
        guard self.phase == .running, let record = self.record else { return }
        self.phase = .ended
        self.flushTask?.cancel()
        self.recorder?.abandon()
        self.connection.context.service.registry.unregister(id: record.id)
        let reason = Self.describe(error)
        self.endedBy = "recording failed"
        self.tell("\r\ngatehouse: the session's recording failed (\(reason)); the session is ended\r\n")
        let ending = self.ending()
        let service = self.connection.context.service
        let promise = self.inbound.eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { try await service.recordingFailed(record, ending: ending, reason: reason) }
        let inbound = self.inbound
        let outbound = self.outbound
        outbound.close(promise: nil)
        promise.futureResult.whenComplete { _ in inbound.close(promise: nil) }
    }

    /// Answers a program request with a message instead of the program.
    private func refuse(_ message: String, wantReply: Bool) {
        self.decide(true, wantReply: wantReply)
        self.tell("gatehouse: \(message)\r\n")
        self.person?.triggerUserOutboundEvent(SSHChannelRequestEvent.ExitStatus(exitStatus: 1), promise: nil)
        self.phase = .ended
        self.outbound.close(promise: nil)
        self.inbound.close(promise: nil)
    }

    private func tell(_ text: String) {
        guard let person = self.person else { return }
        var buffer = person.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        person.writeAndFlush(NIOAny(SSHChannelData(type: .stdErr, data: .byteBuffer(buffer))), promise: nil)
    }

    private func note(_ kind: RecordingEvent.Kind, _ text: String) {
        guard self.phase == .running, let recorder = self.recorder else { return }
        do { try recorder.record(kind, ByteBuffer(string: text), at: self.now) } catch { self.recordingFailed(error) }
    }

    private func ending() -> BastionService.Ending {
        .init(exitStatus: self.exitStatus, exitSignal: self.exitSignal, endedBy: self.endedBy, bytesIn: self.bytesIn, bytesOut: self.bytesOut)
    }

    static func describe(_ error: any Error) -> String {
        (error as? GatehouseError)?.message ?? "\(error)"
    }
}

/// A future for when the relay is gone (nothing left to wait for).
enum ImmediateFailure: Error {
    case relayGone
    static var future: EventLoopFuture<Void> { MultiThreadedEventLoopGroup.singleton.any().makeFailedFuture(ImmediateFailure.relayGone) }
}

/// The person's side of a relayed session.
private final class PersonSide: ChannelDuplexHandler {
    typealias InboundIn = SSHChannelData
    typealias OutboundIn = SSHChannelData
    typealias OutboundOut = SSHChannelData
    let relay: SessionRelay
    init(relay: SessionRelay) { self.relay = relay }

    func handlerAdded(context: ChannelHandlerContext) { self.relay.person = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.relay.person = nil }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { self.relay.fromPerson(self.unwrapInboundIn(data)) }
    func channelReadComplete(context: ChannelHandlerContext) { self.relay.personReadComplete(context) }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) { self.relay.personEvent(event) }
    func channelInactive(context: ChannelHandlerContext) { self.relay.personClosed() }
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        guard context.channel.isWritable, self.relay.targetPendingRead else { return }
        self.relay.targetPendingRead = false
        self.relay.outbound.read()
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The connection going away under a session is routine; anything else is worth a look.
        let level: Logger.Level = (error as? NIOSSHError)?.type == .tcpShutdown ? .debug : .notice
        self.relay.connection.logger.log(level: level, "session channel error (client side)", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

/// The target's side of a relayed session.
private final class TargetSide: ChannelDuplexHandler {
    typealias InboundIn = SSHChannelData
    typealias OutboundIn = SSHChannelData
    typealias OutboundOut = SSHChannelData
    let relay: SessionRelay
    init(relay: SessionRelay) { self.relay = relay }

    func handlerAdded(context: ChannelHandlerContext) { self.relay.target = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.relay.target = nil }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { self.relay.fromTarget(self.unwrapInboundIn(data)) }
    func channelReadComplete(context: ChannelHandlerContext) { self.relay.targetReadComplete(context) }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) { self.relay.targetEvent(event) }
    func channelInactive(context: ChannelHandlerContext) { self.relay.targetClosed() }
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        guard context.channel.isWritable, self.relay.personPendingRead else { return }
        self.relay.personPendingRead = false
        self.relay.inbound.read()
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The connection going away under a session is routine; anything else is worth a look.
        let level: Logger.Level = (error as? NIOSSHError)?.type == .tcpShutdown ? .debug : .notice
        self.relay.connection.logger.log(level: level, "session channel error (target side)", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

extension SessionRelay {
    /// An exec that is a plain file transfer (`scp -t|-f ...`, `rsync --server ...`) with no
    /// shell syntax that could run anything else: only its output is summarized in the recording.
    static func isFileTransfer(mode: String, command: String?) -> Bool {
        guard mode == "exec", let command, command.utf8.count <= 4096 else { return false }
        guard
            !command.unicodeScalars.contains(where: {
                ";&|`$<>()\n\r\\!{}*?[]~#'\"=".unicodeScalars.contains($0) || $0.value < 0x20 || $0.value > 0x7E
            })
        else { return false }
        let words = command.split(separator: " ").map(String.init)
        guard let program = words.first else { return false }
        let rest = words.dropFirst()
        // Only the server ends of the transfers themselves: `scp -t|-f [-rpdvq] [--] PATH` (no -S,
        // -o, -F or anything else that runs a program) and `rsync --server [--sender] -FLAGS . PATH`
        // (no --daemon, --config or other long option).
        switch program {
        case "scp":
            let flags = rest.filter { $0.hasPrefix("-") && $0 != "--" }
            let paths = rest.filter { !$0.hasPrefix("-") }
            return paths.count == 1 && flags.allSatisfy { $0.dropFirst().allSatisfy("rpdvqtf".contains) && $0.count > 1 }
                && flags.contains { $0.contains("t") || $0.contains("f") }
        case "rsync":
            guard rest.first == "--server" else { return false }
            let options = rest.dropFirst().filter { $0.hasPrefix("-") }
            return options.allSatisfy {
                $0 == "--sender" || (!$0.hasPrefix("--") && $0.count > 1 && $0.dropFirst().allSatisfy { $0.isLetter || $0.isNumber || $0 == "." })
            }
        default:
            return false
        }
    }
}
