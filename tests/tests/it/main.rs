//! Workspace-wide checks that are about the code base itself rather than one crate.

mod module_docs;
