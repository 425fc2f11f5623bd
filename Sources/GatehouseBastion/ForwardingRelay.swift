import NIOCore
import NIOSSH

/// Bytes both ways between a person's direct-tcpip channel and the same forwarding opened on the
/// target (audited when opened; not recorded: it is not a terminal). Reads on one side only
/// while the other side can take writes, so a slow end slows the fast one instead of filling memory.
final class ForwardingRelay: ChannelDuplexHandler {
    typealias InboundIn = SSHChannelData
    typealias OutboundIn = SSHChannelData
    typealias OutboundOut = SSHChannelData

    private var partner: ForwardingRelay?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func link(inbound: any Channel, outbound: any Channel) throws {
        let a = ForwardingRelay()
        let b = ForwardingRelay()
        a.partner = b
        b.partner = a
        try inbound.pipeline.syncOperations.addHandler(a)
        try outbound.pipeline.syncOperations.addHandler(b)
        inbound.read()
        outbound.read()
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = self.unwrapInboundIn(data)
        guard case .channel = message.type else { return }
        self.partner?.context?.write(NIOAny(message), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard let partner = self.partner?.context else { return }
        partner.flush()
        if partner.channel.isWritable { context.read() } else { self.pendingRead = true }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        guard context.channel.isWritable, let partner = self.partner, partner.pendingRead else { return }
        partner.pendingRead = false
        partner.context?.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            self.partner?.context?.close(mode: .output, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let partner = self.partner
        self.partner = nil
        partner?.partner = nil
        partner?.context?.close(promise: nil)
    }
}
