//! Helpers for the wire types: typed ids travel as prefixed strings and are parsed once at the
//! edge, with an `INVALID_ARGUMENT` status naming the field. Never echoes a value field.

use std::str::FromStr;

use osb_proto::IdParseError;

/// Parses a typed id from a request field, or answers `INVALID_ARGUMENT` naming the field.
pub fn parse_id<T>(field: &'static str, text: &str) -> Result<T, tonic::Status>
where
    T: FromStr<Err = IdParseError>,
{
    text.parse()
        .map_err(|error: IdParseError| tonic::Status::invalid_argument(format!("{field}: {error}")))
}

#[cfg(test)]
mod tests {
    use osb_proto::SandboxId;

    use super::*;

    #[test]
    fn ids_parse_or_name_the_field() {
        let id = SandboxId::new();
        assert_eq!(
            parse_id::<SandboxId>("sandbox_id", &id.to_string()).expect("parses"),
            id
        );
        let status = parse_id::<SandboxId>("sandbox_id", "prj_nope").expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().starts_with("sandbox_id: "));
    }
}
