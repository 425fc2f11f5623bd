import Foundation
import GatehouseGraphQL

// libFuzzer harness for the checks GraphQL requests pass before execution. The input is used
// twice: as a raw request body, and as the query string of a well-formed body, so the fuzzer
// reaches the bracket scanner and the recursive parser directly. A scanner that under-counts
// nesting shows up here as a stack overflow in the parser.

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

nonisolated(unsafe) let gateway = try! GraphQLGateway()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGraphQL(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    _ = gateway.admit(body: bytes)
    let query = String(decoding: bytes, as: UTF8.self)
    if let body = try? JSONSerialization.data(withJSONObject: ["query": query]) {
        _ = gateway.admit(body: [UInt8](body))
    }
    return 0
}

@main
enum FuzzGraphQL {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, { fuzzGraphQL($0, $1) }))
    }
}
