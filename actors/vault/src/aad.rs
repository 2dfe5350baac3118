//! Associated data that binds a ciphertext to its row. A ciphertext copied to another org,
//! project, secret name or secret version (or with its key-version header edited) fails to
//! authenticate. Fields are length-prefixed so no two different rows share an encoding.

use osb_proto::{OrgId, ProjectId};

const AAD_LABEL: &[u8] = b"opensandbox secret v1\0";

/// Which row a ciphertext belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretAad {
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub name: String,
    pub secret_version: u64,
}

impl SecretAad {
    /// The bytes fed to AES-GCM as associated data, including the ciphertext's key version.
    pub(crate) fn encode(&self, key_version: u16) -> Vec<u8> {
        let name = self.name.as_bytes();
        let mut out = Vec::with_capacity(AAD_LABEL.len() + 2 + 32 + 4 + name.len() + 8);
        out.extend_from_slice(AAD_LABEL);
        out.extend_from_slice(&key_version.to_be_bytes());
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
