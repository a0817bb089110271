//! Secrets never printed: every password form a Redis URL can carry is masked.

/// Query parameters of a Redis URL that carry a secret.
const SECRET_PARAMS: [&str; 4] = ["pass", "password", "passwd", "auth"];

/// Replaces every password in a Redis URL by `***`: in the userinfo (`redis://user:pw@host`,
/// also when the password itself contains `@`), and in query parameters
/// (`unix:///run/redis.sock?pass=…`, `redis+unix://…?user=u&password=…`).
pub fn redact_url(url: &str) -> String {
    // The userinfo ends at the last `@` (a password may hold `@`, `/`, `?`): masking too much
    // of a malformed URL is harmless, printing a secret is not.
    let masked = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo
                    .split_once(':')
                    .map_or("", |(u, _)| u)
                    .split(['/', '?'])
                    .next()
                    .unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    };
    let Some((head, query)) = masked.split_once('?') else {
        return masked;
    };
    let params: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                format!("{k}=***")
            }
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}?{}", params.join("&"))
}

/// Serialises a URL with its password masked (`check-config`).
pub fn serialize_redacted_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_password_form_is_redacted() {
        for (url, secret) in [
            ("redis://:hunter2@10.0.0.1:6379/0", "hunter2"),
            ("redis://u:hunter2@h/0", "hunter2"),
            ("redis://u:hun@ter2@h:6379/0", "ter2"),
            ("redis://u:h/u?n@ter2@h:6379/0", "ter2"),
            ("unix:///run/redis.sock?db=1&pass=hunter2", "hunter2"),
            (
                "redis+unix:///run/redis.sock?user=u&password=hunter2",
                "hunter2",
            ),
            ("unix:///run/redis.sock?PASS=hunter2&db=0", "hunter2"),
            ("rediss://:hunter2@h:6380", "hunter2"),
        ] {
            let r = redact_url(url);
            assert!(!r.contains(secret), "{url} -> {r}");
            assert!(r.contains("***"), "{url} -> {r}");
        }
        assert_eq!(
            redact_url("redis+unix:///run/r.sock?user=u&pass=x"),
            "redis+unix:///run/r.sock?user=u&pass=***"
        );
        assert_eq!(redact_url("redis://u:p@h/0"), "redis://u:***@h/0");
        assert_eq!(
            redact_url("unix:///run/redis.sock"),
            "unix:///run/redis.sock"
        );
    }
}
