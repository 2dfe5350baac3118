//! Table and column identifiers shared by the migrations (one enum per table).

use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
pub enum Orgs {
    Table,
    Id,
    Name,
    CreatedAt,
    DevelopmentRuntime,
    MaxSandboxes,
    MaxCpus,
    MaxMemoryMb,
    MaxCheckpointBytes,
}

#[derive(DeriveIden)]
pub enum ApiKeys {
    Table,
    Id,
    OrgId,
    Name,
    KeyHash,
    KeyPrefix,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
    Scope,
    ExpiresAt,
}

#[derive(DeriveIden)]
pub enum EncryptionKeys {
    Table,
    Version,
    Fingerprint,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum Projects {
    Table,
    Id,
    OrgId,
    Name,
    Template,
    CpuCount,
    MemoryMb,
    TimeoutSec,
    EgressAllowlist,
    CreatedAt,
    UpdatedAt,
    Runtime,
}

#[derive(DeriveIden)]
pub enum Secrets {
    Table,
    Id,
    OrgId,
    ProjectId,
    Name,
    Ciphertext,
    KeyVersion,
    SecretVersion,
    AllowedHosts,
    CreatedAt,
    UpdatedAt,
    RowBinding,
}

#[derive(DeriveIden)]
pub enum VaultState {
    Table,
    Id,
    BindingFloor,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum Sandboxes {
    Table,
    Id,
    OrgId,
    ProjectId,
    ProjectName,
    WorkerId,
    Status,
    Generation,
    Template,
    CpuCount,
    MemoryMb,
    TimeoutSec,
    FailureReason,
    Runtime,
    Egress,
    Metadata,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum Checkpoints {
    Table,
    Id,
    OrgId,
    SandboxId,
    ProjectId,
    Metadata,
    StoragePath,
    CreatedAt,
    SizeBytes,
}

#[derive(DeriveIden)]
pub enum Snapshots {
    Table,
    Id,
    OrgId,
    Name,
    CheckpointId,
    Metadata,
    CreatedAt,
    SizeBytes,
}

#[derive(DeriveIden)]
pub enum Sagas {
    Table,
    Id,
    Kind,
    Status,
    Owner,
    ClaimedAt,
    Params,
    CreatedAt,
    UpdatedAt,
    Generation,
}

#[derive(DeriveIden)]
pub enum SagaLog {
    Table,
    Id,
    SagaId,
    Seq,
    Step,
    Action,
    Status,
    Output,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum ProcessedCommands {
    Table,
    IdempotencyKey,
    Response,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum AuditEvents {
    Table,
    Id,
    OrgId,
    Subject,
    Kind,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum Outbox {
    Table,
    MsgId,
    Subject,
    Payload,
    CreatedAt,
}
