import Foundation
import GatehouseCore
import GatehouseOIDC

/// The in-memory store: the X.509 authority and its certificates (`SQLTransaction+PKI.swift` is the SQL).
extension InMemoryTransaction {
    func pkiAuthorities() async throws -> [PKIAuthorityRecord] { self.state.pkiAuthorities.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) } }

    func pkiCertificate(serial: String) async throws -> PKICertificateRecord? { self.state.pkiCertificates[serial] }

    func pkiCertificates(liveAt: Date?, limit: Int) async throws -> [PKICertificateRecord] {
        Array(
            self.state.pkiCertificates.values.filter { c in liveAt.map { c.notAfter > $0 } ?? true }.sorted {
                ($0.createdAt, $0.serial) > ($1.createdAt, $1.serial)
            }.prefix(limit))
    }

    func revokedPKICertificates(authorityID: String, at time: Date) async throws -> [PKICertificateRecord] {
        self.state.pkiCertificates.values.filter { $0.authorityID == authorityID && $0.revokedAt != nil && $0.notAfter > time }.sorted {
            $0.serial < $1.serial
        }
    }

    func insertPKIAuthority(_ record: PKIAuthorityRecord) async throws {
        guard !self.state.pkiAuthorities.contains(where: { $0.id == record.id }) else {
            throw GatehouseError(.conflict, "authority \(record.id) exists")
        }
        self.state.pkiAuthorities.append(record)
    }

    func activatePKIAuthority(id: String, rootDER: [UInt8], intermediateDER: [UInt8]) async throws -> Bool {
        guard let i = self.state.pkiAuthorities.firstIndex(where: { $0.id == id && $0.status == .pending }) else { return false }
        self.state.pkiAuthorities[i].status = .active
        self.state.pkiAuthorities[i].rootDER = rootDER
        self.state.pkiAuthorities[i].intermediateDER = intermediateDER
        return true
    }

    func insertPKICertificate(_ record: PKICertificateRecord) async throws {
        guard self.state.pkiCertificates[record.serial] == nil else { throw GatehouseError(.conflict, "serial exists") }
        self.state.pkiCertificates[record.serial] = record
    }

    func revokePKICertificate(serial: String, reason: String, at time: Date) async throws -> Bool {
        guard var c = self.state.pkiCertificates[serial], c.revokedAt == nil else { return false }
        c.revokedAt = time
        c.revocationReason = reason
        self.state.pkiCertificates[serial] = c
        return true
    }

    func revokePKICertificates(userID: String?, requester: String?, reason: String, at time: Date) async throws -> Int {
        var n = 0
        for (serial, c) in self.state.pkiCertificates
        where c.revokedAt == nil && c.notAfter > time
            && ((userID != nil && c.userID == userID) || (requester != nil && c.requester == requester))
        {
            self.state.pkiCertificates[serial]?.revokedAt = time
            self.state.pkiCertificates[serial]?.revocationReason = reason
            n += 1
        }
        return n
    }
}
