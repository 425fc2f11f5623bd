import GatehouseServices
import SQLKit

/// The schema, as an append-only list of versioned steps. Never edit or reorder a released
/// migration: add a new one. Each step may differ per dialect where SQL types differ.
enum Migrations {
    struct Migration: Sendable {
        let version: Int64
        let name: String
        let statements: @Sendable (SQLDialectKind) -> [String]
    }

    static let all: [Migration] = [
        Migration(version: 1, name: "foundation") { _ in
            [
                """
                CREATE TABLE gatehouse_meta (
                    key TEXT PRIMARY KEY,
                    value TEXT NOT NULL
                )
                """,
                """
                CREATE TABLE sealed_keys (
                    purpose TEXT PRIMARY KEY,
                    algorithm TEXT NOT NULL,
                    public_key TEXT NOT NULL,
                    sealed_private_key TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY,
                    username TEXT NOT NULL UNIQUE,
                    email TEXT,
                    role TEXT NOT NULL,
                    status TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE invitations (
                    id TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    username TEXT NOT NULL,
                    email TEXT,
                    role TEXT NOT NULL,
                    token_hash TEXT NOT NULL UNIQUE,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    created_by TEXT NOT NULL,
                    state TEXT NOT NULL,
                    finished_at BIGINT
                )
                """,
                "CREATE UNIQUE INDEX invitations_one_pending_per_user ON invitations (username) WHERE state = 'pending'",
                """
                CREATE TABLE audit_events (
                    seq BIGINT PRIMARY KEY,
                    time BIGINT NOT NULL,
                    code TEXT NOT NULL,
                    actor TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    outcome TEXT NOT NULL,
                    reason TEXT,
                    request_id TEXT,
                    source_address TEXT,
                    details TEXT NOT NULL
                )
                """,
            ]
        },
        Migration(version: 2, name: "audit-merkle") { _ in
            [
                // Leaf hash of each entry's canonical encoding, recorded at append time.
                "ALTER TABLE audit_events ADD COLUMN entry_hash TEXT",
                """
                CREATE TABLE audit_checkpoints (
                    tree_size BIGINT PRIMARY KEY,
                    root_hash TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    note TEXT NOT NULL
                )
                """,
            ]
        },
        Migration(version: 3, name: "policy-versions") { _ in
            [
                """
                CREATE TABLE policy_versions (
                    version BIGINT PRIMARY KEY,
                    sha256 TEXT NOT NULL,
                    source TEXT NOT NULL,
                    applied_at BIGINT NOT NULL,
                    applied_by TEXT NOT NULL,
                    comment TEXT,
                    rule_count BIGINT NOT NULL
                )
                """
            ]
        },
        Migration(version: 4, name: "passkeys-and-sessions") { _ in
            [
                """
                CREATE TABLE webauthn_credentials (
                    id TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL REFERENCES users (id),
                    user_handle TEXT NOT NULL,
                    public_key TEXT NOT NULL,
                    algorithm BIGINT NOT NULL,
                    sign_count BIGINT NOT NULL,
                    backup_eligible BOOLEAN NOT NULL,
                    backed_up BOOLEAN NOT NULL,
                    aaguid TEXT NOT NULL,
                    attestation_format TEXT NOT NULL,
                    transports TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    last_used_at BIGINT
                )
                """,
                "CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id)",
                """
                CREATE TABLE sessions (
                    token_hash TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL REFERENCES users (id),
                    credential_id TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    last_seen_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    idle_timeout_ms BIGINT NOT NULL,
                    stepped_up_at BIGINT NOT NULL,
                    revoked_at BIGINT,
                    source_address TEXT
                )
                """,
                "CREATE INDEX sessions_user ON sessions (user_id)",
            ]
        },
        Migration(version: 5, name: "openid-connect") { _ in
            [
                """
                CREATE TABLE oidc_clients (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    redirect_uris TEXT NOT NULL,
                    post_logout_redirect_uris TEXT NOT NULL,
                    secret_hash TEXT,
                    jwks TEXT NOT NULL,
                    first_party BOOLEAN NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE oidc_signing_keys (
                    kid TEXT PRIMARY KEY,
                    algorithm TEXT NOT NULL,
                    public_key TEXT NOT NULL,
                    sealed_private_key TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    retire_at BIGINT
                )
                """,
                """
                CREATE TABLE oidc_grants (
                    id TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL REFERENCES users (id),
                    client_id TEXT NOT NULL,
                    scope TEXT NOT NULL,
                    nonce TEXT,
                    auth_time BIGINT NOT NULL,
                    amr TEXT NOT NULL,
                    acr TEXT NOT NULL,
                    session_hash TEXT,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    revoked_at BIGINT,
                    revoked_reason TEXT
                )
                """,
                "CREATE INDEX oidc_grants_user ON oidc_grants (user_id)",
                "CREATE INDEX oidc_grants_session ON oidc_grants (session_hash)",
                "CREATE INDEX oidc_grants_client ON oidc_grants (client_id)",
                """
                CREATE TABLE oidc_tokens (
                    hash TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    grant_id TEXT NOT NULL REFERENCES oidc_grants (id),
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    used_at BIGINT,
                    revoked_at BIGINT,
                    redirect_uri TEXT,
                    code_challenge TEXT,
                    scope TEXT
                )
                """,
                "CREATE INDEX oidc_tokens_grant ON oidc_tokens (grant_id)",
                """
                CREATE TABLE oidc_consents (
                    user_id TEXT NOT NULL REFERENCES users (id),
                    client_id TEXT NOT NULL,
                    scope TEXT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    PRIMARY KEY (user_id, client_id)
                )
                """,
                """
                CREATE TABLE oidc_device_authorizations (
                    device_code_hash TEXT PRIMARY KEY,
                    user_code TEXT NOT NULL UNIQUE,
                    client_id TEXT NOT NULL,
                    scope TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    interval_s BIGINT NOT NULL,
                    last_polled_at BIGINT,
                    status TEXT NOT NULL,
                    grant_id TEXT
                )
                """,
            ]
        },
        Migration(version: 6, name: "ssh-certificates") { _ in
            [
                // Serials are unsigned 64-bit: stored as decimal text.
                """
                CREATE TABLE ssh_certificates (
                    serial TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    key_fingerprint TEXT NOT NULL,
                    principals TEXT NOT NULL,
                    key_id TEXT NOT NULL,
                    valid_after BIGINT NOT NULL,
                    valid_before BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    revoked_at BIGINT
                )
                """,
                "CREATE INDEX ssh_certificates_user ON ssh_certificates (user_id)",
            ]
        },
        Migration(version: 7, name: "hosts") { _ in
            [
                """
                CREATE TABLE hosts (
                    name TEXT PRIMARY KEY,
                    join_token_hash TEXT UNIQUE,
                    join_expires_at BIGINT,
                    joined_at BIGINT,
                    host_key_fingerprint TEXT,
                    agent_token_hash TEXT UNIQUE,
                    created_at BIGINT NOT NULL
                )
                """
            ]
        },
        Migration(version: 8, name: "x509-authority") { _ in
            [
                """
                CREATE TABLE pki_authorities (
                    id TEXT PRIMARY KEY,
                    trust_domain TEXT NOT NULL,
                    algorithm TEXT NOT NULL,
                    root_der TEXT NOT NULL,
                    intermediate_der TEXT NOT NULL,
                    sealed_intermediate_key TEXT NOT NULL,
                    root_offline INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                // Serials are 16 random octets: stored as lower-case hex.
                """
                CREATE TABLE pki_certificates (
                    serial TEXT PRIMARY KEY,
                    spiffe_id TEXT NOT NULL,
                    dns_names TEXT NOT NULL,
                    ip_addresses TEXT NOT NULL,
                    key_fingerprint TEXT NOT NULL,
                    requester TEXT NOT NULL,
                    user_id TEXT,
                    authority_id TEXT NOT NULL,
                    not_before BIGINT NOT NULL,
                    not_after BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    revoked_at BIGINT,
                    revocation_reason TEXT
                )
                """,
                "CREATE INDEX pki_certificates_user ON pki_certificates (user_id)",
                "CREATE INDEX pki_certificates_requester ON pki_certificates (requester)",
            ]
        },
        Migration(version: 9, name: "private-network") { _ in
            [
                // address_index numbers the device's address; numbers are never handed out twice.
                """
                CREATE TABLE net_devices (
                    id TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL,
                    username TEXT NOT NULL,
                    name TEXT NOT NULL,
                    public_key TEXT NOT NULL UNIQUE,
                    address_index BIGINT NOT NULL UNIQUE,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    revoked_at BIGINT
                )
                """,
                "CREATE INDEX net_devices_user ON net_devices (user_id)",
                """
                CREATE TABLE net_hosts (
                    host TEXT PRIMARY KEY,
                    public_key TEXT NOT NULL UNIQUE,
                    endpoint TEXT NOT NULL,
                    enrolled_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
            ]
        },
        Migration(version: 10, name: "bastion-sessions") { _ in
            [
                """
                CREATE TABLE bastion_sessions (
                    id TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL,
                    username TEXT NOT NULL,
                    login TEXT NOT NULL,
                    host TEXT NOT NULL,
                    source TEXT,
                    mode TEXT NOT NULL,
                    command TEXT,
                    started_at BIGINT NOT NULL,
                    ended_at BIGINT,
                    exit_status BIGINT,
                    exit_signal TEXT,
                    ended_by TEXT,
                    recording_sha256 TEXT,
                    recording_bytes BIGINT,
                    bytes_in BIGINT NOT NULL,
                    bytes_out BIGINT NOT NULL
                )
                """,
                "CREATE INDEX bastion_sessions_user ON bastion_sessions (user_id)",
                "CREATE INDEX bastion_sessions_started ON bastion_sessions (started_at)",
                "CREATE INDEX ssh_certificates_key ON ssh_certificates (key_fingerprint)",
                // When the person last proved their passkey before the certificate was issued: the
                // bastion honours `step_up` rules with it.
                "ALTER TABLE ssh_certificates ADD COLUMN auth_time BIGINT",
            ]
        },
        Migration(version: 11, name: "bastion-session-heartbeats") { _ in
            [
                // Which server process runs a live session, and when it last said so: a session
                // whose process stopped without ending it is closed as interrupted, and its
                // recording sealed as found, by whichever replica notices.
                "ALTER TABLE bastion_sessions ADD COLUMN replica TEXT",
                "ALTER TABLE bastion_sessions ADD COLUMN heartbeat_at BIGINT",
                "CREATE INDEX bastion_sessions_live ON bastion_sessions (replica) WHERE ended_at IS NULL",
            ]
        },
        Migration(version: 12, name: "credentials-by-grant") { _ in
            [
                // Which OIDC grant asked for each certificate and device: revoking a sign-in
                // session (or the passkey it was opened with) revokes its grants and, through
                // these, everything issued under them.
                "ALTER TABLE ssh_certificates ADD COLUMN grant_id TEXT",
                "ALTER TABLE pki_certificates ADD COLUMN grant_id TEXT",
                "ALTER TABLE net_devices ADD COLUMN grant_id TEXT",
                "CREATE INDEX ssh_certificates_grant ON ssh_certificates (grant_id) WHERE grant_id IS NOT NULL",
                "CREATE INDEX pki_certificates_grant ON pki_certificates (grant_id) WHERE grant_id IS NOT NULL",
                "CREATE INDEX net_devices_grant ON net_devices (grant_id) WHERE grant_id IS NOT NULL",
                // Where a device authorization started, shown on the approval page (phishing).
                "ALTER TABLE oidc_device_authorizations ADD COLUMN source_address TEXT",
            ]
        },
        Migration(version: 13, name: "passkey-names-session-browsers") { _ in
            [
                // A name the person gives a passkey ("work laptop"), shown on /account.
                "ALTER TABLE webauthn_credentials ADD COLUMN name TEXT",
                // The browser a session was opened in, summarized ("Chrome on Linux"), so a
                // person can tell their sessions apart and end the one they do not know.
                "ALTER TABLE sessions ADD COLUMN user_agent TEXT",
            ]
        },
    ]

    static var latestVersion: Int64 { all.last?.version ?? 0 }
}

/// The two SQL dialects Gatehouse speaks.
enum SQLDialectKind: Sendable {
    case sqlite
    case postgres
}
