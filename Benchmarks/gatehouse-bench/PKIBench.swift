import Crypto
import Foundation
import GatehouseCore
import GatehousePKI
import X509

/// X.509 leaf issuance on one core: ours (an X509-SVID signed with the P-256 intermediate), and
/// the whole request path (check the CSR's DER, key and signature, then issue), next to one
/// ECDSA P-256 signature alone; then Python's `cryptography` issuing the same profile in one
/// process (the issue's figure: ~17,200/s) and `openssl x509 -req`, one process per certificate.
enum PKIBench {
    static func run() throws {
        let random = SystemRandomSource()
        let rootKey = SigningKey.generate(.p256, using: random)
        let now = Date()
        let root = try Authority.root(key: rootKey, trustDomain: "corp.example", serial: Authority.randomSerial(using: random), now: now)
        let key = SigningKey.generate(.p256, using: random)
        let intermediate = try Authority.intermediate(
            publicKey: key.certificatePrivateKey.publicKey, trustDomain: "corp.example", root: root, rootKey: rootKey,
            serial: Authority.randomSerial(using: random), now: now)
        let leafKeys = (0..<64).map { _ in P256.Signing.PrivateKey() }
        let requests = try leafKeys.map {
            try SigningRequest.makePEM(key: .p256($0), spiffeID: "spiffe://corp.example/host/web-1/api", dnsNames: ["api.corp.example"])
        }
        let ders = try requests.map { try PEM.decode($0, label: "CERTIFICATE REQUEST") }
        let profile = Authority.LeafProfile(spiffeID: "spiffe://corp.example/host/web-1/api", dnsNames: ["api.corp.example"])
        func rate(_ n: Int, _ body: (Int) throws -> Void) rethrows -> Double { try Bench.bestRate(n, body) }
        let issue = try rate(5_000) { i in
            _ = try Authority.der(
                try Authority.leaf(
                    publicKey: Certificate.PublicKey(leafKeys[i % 64].publicKey), profile: profile, issuer: intermediate, issuerKey: key,
                    serial: Authority.randomSerial(using: random), now: now))
        }
        let path = try rate(3_000) { i in
            let request = try SigningRequest(der: ders[i % 64])
            _ = try Authority.der(
                try Authority.leaf(
                    publicKey: request.publicKey, profile: profile, issuer: intermediate, issuerKey: key,
                    serial: Authority.randomSerial(using: random), now: now))
        }
        guard case .p256(let raw) = key else { return }
        let message = [UInt8](repeating: 1, count: 400)
        let signature = try rate(5_000) { _ in _ = try raw.signature(for: message) }
        print("")
        print("X.509 leaf certificates (X509-SVID, P-256 intermediate), one core")
        print(
            String(
                format: "  issue (build, DER, sign)              %10.0f/s   ECDSA P-256 signature alone %10.0f/s   ratio %.2fx", issue, signature,
                issue / signature))
        print(String(format: "  CSR check + issue (the request path)  %10.0f/s", path))
        if let python = Self.pythonRate(intermediateKeyPEM: key.pkcs8PEM, intermediatePEM: try Authority.pem(intermediate)) {
            print(String(format: "  Python cryptography, same profile, one process %10.0f/s   ours is %.2fx", python, issue / python))
        }
        if let openssl = try? Self.opensslRate(keyPEM: key.pkcs8PEM, certificatePEM: try Authority.pem(intermediate), csr: requests[0]) {
            print(String(format: "  openssl x509 -req, one process each  %10.0f/s   ours is %.0fx", openssl, issue / openssl))
        }
    }

    static func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gh-pkibench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func run(_ executable: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// The same profile (URI+DNS SAN, KU, EKU, BC, SKI, AKI; P-256 leaf keys) with `cryptography`.
    static func pythonRate(intermediateKeyPEM: String, intermediatePEM: String) -> Double? {
        guard let dir = try? Self.temporaryDirectory() else { return nil }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try? intermediateKeyPEM.write(toFile: dir + "/key.pem", atomically: true, encoding: .utf8)
        try? intermediatePEM.write(toFile: dir + "/ca.pem", atomically: true, encoding: .utf8)
        let script = """
            import datetime, sys, time
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.x509.oid import ExtendedKeyUsageOID
            d = sys.argv[1]
            key = serialization.load_pem_private_key(open(d + "/key.pem", "rb").read(), None)
            ca = x509.load_pem_x509_certificate(open(d + "/ca.pem", "rb").read())
            leaves = [ec.generate_private_key(ec.SECP256R1()).public_key() for _ in range(64)]
            now = datetime.datetime.now(datetime.timezone.utc)
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key())
            def one(i):
                pub = leaves[i % 64]
                return (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca.subject).public_key(pub)
                    .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(hours=24))
                    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                    .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
                    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                    .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier("spiffe://corp.example/host/web-1/api"), x509.DNSName("api.corp.example")]), critical=True)
                    .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
                    .add_extension(aki, critical=False)
                    .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
            best = 0
            for _ in range(5):
                t = time.perf_counter()
                for i in range(3000): one(i)
                best = max(best, 3000 / (time.perf_counter() - t))
            print(best)
            """
        try? script.write(toFile: dir + "/bench.py", atomically: true, encoding: .utf8)
        for python in ["/work/main/.venv/bin/python", "/usr/bin/python3", "/usr/local/bin/python3"]
        where FileManager.default.isExecutableFile(atPath: python) {
            if let text = try? Self.run(python, [dir + "/bench.py", dir]), let value = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return value
            }
        }
        if let text = try? Self.run("/usr/bin/env", ["python3", dir + "/bench.py", dir]),
            let value = Double(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            return value
        }
        return nil
    }

    /// `openssl x509 -req` for 50 certificates, one process each (how a shell script would issue).
    static func opensslRate(keyPEM: String, certificatePEM: String, csr: String) throws -> Double {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keyPEM.write(toFile: dir + "/key.pem", atomically: true, encoding: .utf8)
        try certificatePEM.write(toFile: dir + "/ca.pem", atomically: true, encoding: .utf8)
        try csr.write(toFile: dir + "/req.pem", atomically: true, encoding: .utf8)
        try
            "subjectAltName=critical,URI:spiffe://corp.example/host/web-1/api,DNS:api.corp.example\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"
            .write(toFile: dir + "/ext.cnf", atomically: true, encoding: .utf8)
        let start = ContinuousClock.now
        for i in 0..<50 {
            _ = try Self.run(
                "/usr/bin/openssl",
                [
                    "x509", "-req", "-in", dir + "/req.pem", "-CA", dir + "/ca.pem", "-CAkey", dir + "/key.pem", "-set_serial", String(1000 + i),
                    "-days", "1", "-extfile", dir + "/ext.cnf", "-out", dir + "/out.pem",
                ])
        }
        let elapsed = ContinuousClock.now - start
        return 50 / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}
