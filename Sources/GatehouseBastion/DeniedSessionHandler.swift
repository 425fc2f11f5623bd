import NIOCore
import NIOSSH

/// A session the person may not have: it accepts the terminal and environment requests so the
/// client goes on, and when a program is asked for it prints why on stderr, exits 1 and closes.
/// That is how a denial reaches a plain `ssh` in words instead of a bare "Permission denied".
final class DeniedSessionHandler: ChannelDuplexHandler {
    typealias InboundIn = SSHChannelData
    typealias OutboundIn = SSHChannelData
    typealias OutboundOut = SSHChannelData

    let message: String
    private var answered = false

    init(message: String) { self.message = message }

    func handlerAdded(context: ChannelHandlerContext) {
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}  // stdin of a session that will not run

    func channelReadComplete(context: ChannelHandlerContext) {
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let e as SSHChannelRequestEvent.PseudoTerminalRequest: self.reply(context, e.wantReply, true)
        case let e as SSHChannelRequestEvent.EnvironmentRequest: self.reply(context, e.wantReply, true)
        case let e as SSHChannelRequestEvent.ShellRequest: self.refuse(context, e.wantReply)
        case let e as SSHChannelRequestEvent.ExecRequest: self.refuse(context, e.wantReply)
        case let e as SSHChannelRequestEvent.SubsystemRequest: self.refuse(context, e.wantReply)
        default: context.fireUserInboundEventTriggered(event)
        }
    }

    private func reply(_ context: ChannelHandlerContext, _ wantReply: Bool, _ ok: Bool) {
        guard wantReply else { return }
        context.triggerUserOutboundEvent(ok ? ChannelSuccessEvent() : ChannelFailureEvent(), promise: nil)
    }

    private func refuse(_ context: ChannelHandlerContext, _ wantReply: Bool) {
        guard !self.answered else { return self.reply(context, wantReply, false) }
        self.answered = true
        self.reply(context, wantReply, true)
        var buffer = context.channel.allocator.buffer(capacity: self.message.utf8.count + 16)
        buffer.writeString("gatehouse: \(self.message)\r\n")
        context.writeAndFlush(NIOAny(SSHChannelData(type: .stdErr, data: .byteBuffer(buffer))), promise: nil)
        context.triggerUserOutboundEvent(SSHChannelRequestEvent.ExitStatus(exitStatus: 1), promise: nil)
        context.close(promise: nil)
    }
}
