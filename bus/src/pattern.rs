//! NATS subject patterns: tokens separated by `.`, `*` matches exactly one token, `>` (last
//! token only) matches one or more. Used by the in-process bus to route exactly like NATS.

/// Why a subject or pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a valid NATS {what}: {reason}")]
pub struct PatternError {
    pub what: &'static str,
    pub text: String,
    pub reason: &'static str,
}

/// Checks a subscription pattern.
pub fn validate_pattern(pattern: &str) -> Result<(), PatternError> {
    validate(pattern, "subscription pattern", true)
}

/// Checks a concrete subject (no wildcards).
pub fn validate_subject(subject: &str) -> Result<(), PatternError> {
    validate(subject, "subject", false)
}

fn validate(text: &str, what: &'static str, wildcards: bool) -> Result<(), PatternError> {
    let error = |reason| PatternError {
        what,
        text: text.chars().take(120).collect(),
        reason,
    };
    if text.is_empty() {
        return Err(error("it is empty"));
    }
    let tokens: Vec<&str> = text.split('.').collect();
    for (index, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return Err(error("it has an empty token"));
        }
        if token.chars().any(char::is_whitespace) {
            return Err(error("it contains whitespace"));
        }
        let is_wildcard = *token == "*" || *token == ">";
        if is_wildcard && !wildcards {
            return Err(error("a published subject cannot contain wildcards"));
        }
        if *token == ">" && index + 1 != tokens.len() {
            return Err(error("'>' may only be the last token"));
        }
        if !is_wildcard && (token.contains('*') || token.contains('>')) {
            return Err(error("wildcards must be whole tokens"));
        }
    }
    Ok(())
}

/// Whether `subject` matches `pattern`.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for pattern_token in pattern.split('.') {
        match pattern_token {
            ">" => return subject_tokens.next().is_some(),
            "*" => {
                if subject_tokens.next().is_none() {
                    return false;
                }
            }
            literal => {
                if subject_tokens.next() != Some(literal) {
                    return false;
                }
            }
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_nats() {
        assert!(matches("osb.>", "osb.sandbox.x.created"));
        assert!(!matches("osb.>", "osb"));
        assert!(matches("osb.sandbox.*.created", "osb.sandbox.x.created"));
        assert!(!matches("osb.sandbox.*.created", "osb.sandbox.x.y.created"));
        assert!(!matches("osb.sandbox.*", "osb.sandbox"));
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
    }

    #[test]
    fn invalid_patterns_are_explained() {
        assert!(validate_pattern("a.>.b").is_err());
        assert!(validate_pattern("a..b").is_err());
        assert!(validate_pattern("a.b*").is_err());
        assert!(validate_subject("a.*").is_err());
        assert!(validate_subject("a b").is_err());
        assert!(validate_pattern("osb.*.x.>").is_ok());
    }
}
