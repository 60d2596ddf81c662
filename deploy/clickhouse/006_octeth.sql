-- Octeth: the registry (accounts, hashed credentials, lists), identity links (email HMAC'd, never
-- in clear), the property catalogue, and conversion dedup per (list, conversion id).

CREATE TABLE IF NOT EXISTS octeth_accounts
(
    account          String,
    name             String,
    deleted          UInt8 DEFAULT 0,
    updated_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY account;

CREATE TABLE IF NOT EXISTS octeth_credentials
(
    kind             LowCardinality(String) COMMENT 'api_key or session_id',
    credential_sha256 String COMMENT 'hex sha256 of the key: the key itself is never stored',
    account          String,
    deleted          UInt8 DEFAULT 0,
    updated_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (kind, credential_sha256);

CREATE TABLE IF NOT EXISTS octeth_lists
(
    list_id          UInt64,
    account          String,
    deleted          UInt8 DEFAULT 0,
    updated_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY list_id;

CREATE TABLE IF NOT EXISTS identities
(
    tenant           LowCardinality(String) COMMENT 'the Octeth list',
    uuid             String,
    external_id      String,
    email_hmac       String COMMENT 'hex HMAC-SHA256(HITS_IDENTITY_SECRET, lowercased email)',
    first_seen       DateTime64(3, 'UTC') COMMENT 'receive time; take min() across versions',
    event_id         UUID,
    src_partition    UInt16,
    src_pos          UInt64,
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant, email_hmac, uuid, external_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS octeth_properties
(
    tenant           LowCardinality(String) COMMENT 'the Octeth list',
    event            String,
    key              String,
    src_partition    UInt16,
    src_pos          UInt64,
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant, event, key);

ALTER TABLE conversions ADD COLUMN IF NOT EXISTS is_duplicate UInt8 DEFAULT 0
    COMMENT '1 when an earlier conversion of the same (list, conversion id) counted (Octeth)';
