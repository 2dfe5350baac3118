//! `--env NAME=VALUE` pairs: plain environment variables for a sandbox or a command. A name must
//! be an environment-variable name and may be given once; bad pairs are refused before anything
//! is sent. These are not secrets (secrets go through `oc secret set` and reach sandboxes sealed),
//! and our refusal quotes only the name, never the value (clap echoes the argument as typed, which
//! is already in argv).

use serde_json::{Map, Value};

use super::failure::Failure;

/// One parsed `NAME=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvPair {
    pub(crate) name: String,
    pub(crate) value: String,
}

/// The longest name accepted.
const MAX_NAME_LEN: usize = 256;

/// clap value parser for `--env`.
pub(crate) fn parse_env_pair(raw: &str) -> Result<EnvPair, String> {
    let Some((name, value)) = raw.split_once('=') else {
        return Err(
            "expected NAME=VALUE (e.g. --env DEBUG=1); to pass a secret use `oc secret set`"
                .to_owned(),
        );
    };
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_');
    let rest_is_well = chars.all(|next| next.is_ascii_alphanumeric() || next == '_');
    if !starts_well || !rest_is_well || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "`{}` is not an environment variable name: use letters, digits and _, not starting with a digit",
            name.escape_debug()
        ));
    }
    Ok(EnvPair {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

/// The pairs as a JSON object, or a usage failure when a name repeats.
pub(crate) fn env_object(pairs: &[EnvPair]) -> Result<Map<String, Value>, Failure> {
    let mut object = Map::new();
    for pair in pairs {
        if object.contains_key(&pair.name) {
            return Err(Failure::usage(format!(
                "--env {} is given twice; give each name once",
                pair.name
            )));
        }
        object.insert(pair.name.clone(), Value::String(pair.value.clone()));
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_parse_and_bad_ones_are_explained_without_their_value() {
        let pair = parse_env_pair("A_1=x=y").expect("valid");
        assert_eq!((pair.name.as_str(), pair.value.as_str()), ("A_1", "x=y"));
        assert_eq!(parse_env_pair("EMPTY=").expect("valid").value, "");
        assert!(parse_env_pair("NOEQUALS").is_err());
        let refused = parse_env_pair("1BAD=hidden-value").expect_err("bad name");
        assert!(
            refused.contains("1BAD") && !refused.contains("hidden-value"),
            "{refused}"
        );
        assert!(parse_env_pair("=x").is_err());
        assert!(parse_env_pair("A-B=x").is_err());
    }

    #[test]
    fn a_repeated_name_is_refused() {
        let pairs = [
            parse_env_pair("A=1").expect("valid"),
            parse_env_pair("A=2").expect("valid"),
        ];
        assert_eq!(env_object(&pairs).expect_err("dup").code, 2);
        assert_eq!(env_object(&pairs[..1]).expect("one").len(), 1);
    }
}
