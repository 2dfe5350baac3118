//! Associated data that binds a ciphertext to its row. A ciphertext copied to another org,
//! project, secret name, secret version or row (or with its key-version header edited) fails
//! to authenticate. Fields are length-prefixed or fixed-size so no two different rows share an
//! encoding.
//!
//! Two layouts exist (ADR 0019). Layout 2, written by every write since, binds the secret's row
//! id too, so the ciphertext of a deleted secret cannot be replayed into a re-created secret of
//! the same name (a new row, a new id, versions starting again at 1). Layout 1 (without the id)
//! is only read, for rows written before; `osbd keys rewrap` moves them to layout 2, after which
//! the vault refuses layout 1 for good.

use osb_proto::{OrgId, ProjectId, SecretId};

const AAD_LABEL_V1: &[u8] = b"opensandbox secret v1\0";
const AAD_LABEL_V2: &[u8] = b"opensandbox secret v2\0";

/// The row-binding layout every write uses.
pub const CURRENT_ROW_BINDING: u16 = 2;
/// The oldest layout that exists.
pub const LEGACY_ROW_BINDING: u16 = 1;

/// Which row a ciphertext belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretAad {
    pub secret_id: SecretId,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub name: String,
    pub secret_version: u64,
    /// The layout: [`LEGACY_ROW_BINDING`] leaves `secret_id` out.
    pub row_binding: u16,
}

impl SecretAad {
    /// The bytes fed to AES-GCM as associated data, including the ciphertext's key version.
    pub(crate) fn encode(&self, key_version: u16) -> Vec<u8> {
        let name = self.name.as_bytes();
        let mut out = Vec::with_capacity(AAD_LABEL_V2.len() + 2 + 48 + 4 + name.len() + 8);
        if self.row_binding <= LEGACY_ROW_BINDING {
            out.extend_from_slice(AAD_LABEL_V1);
            out.extend_from_slice(&key_version.to_be_bytes());
        } else {
            out.extend_from_slice(AAD_LABEL_V2);
            out.extend_from_slice(&key_version.to_be_bytes());
            out.extend_from_slice(self.secret_id.as_uuid().as_bytes());
        }
        out.extend_from_slice(self.org_id.as_uuid().as_bytes());
        out.extend_from_slice(self.project_id.as_uuid().as_bytes());
        // Names are bounded far below u32::MAX by validation; saturate rather than wrap.
        let name_len = u32::try_from(name.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&name_len.to_be_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&self.secret_version.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad(row_binding: u16) -> SecretAad {
        SecretAad {
            secret_id: SecretId::new(),
            org_id: OrgId::new(),
            project_id: ProjectId::new(),
            name: "API_KEY".to_owned(),
            secret_version: 3,
            row_binding,
        }
    }

    #[test]
    fn layout_2_binds_the_row_id_and_layout_1_does_not() {
        let first = aad(CURRENT_ROW_BINDING);
        let mut other_row = first.clone();
        other_row.secret_id = SecretId::new();
        assert_ne!(first.encode(1), other_row.encode(1));

        let mut legacy = first.clone();
        legacy.row_binding = LEGACY_ROW_BINDING;
        let mut legacy_other_row = other_row.clone();
        legacy_other_row.row_binding = LEGACY_ROW_BINDING;
        assert_eq!(legacy.encode(1), legacy_other_row.encode(1));
        // The layouts never collide with each other.
        assert_ne!(legacy.encode(1), first.encode(1));
    }
}
