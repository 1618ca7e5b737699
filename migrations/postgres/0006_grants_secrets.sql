-- Network grants and secrets (see docs/secrets.md).

-- What outbound HTTP a plugin may do, per tenant: the grant is the tenant's,
-- keyed by the plugin id the tenant sees (its own plugin, or a shared one).
-- `grant_json` is the grant as the operator wrote it (validated by the
-- plugin host's `NetworkGrant` before it is stored); the store keeps it as
-- text and does not interpret it.
CREATE TABLE plugin_grants (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    plugin_id  TEXT NOT NULL,
    grant_json TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, plugin_id)
);

-- A tenant's secrets, sealed with a key the database never holds (AEAD;
-- the associated data binds tenant and name, so a row cannot be moved).
CREATE TABLE secrets (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    ciphertext BYTEA NOT NULL,
    nonce      BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
