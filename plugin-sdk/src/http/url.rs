//! The parts of a request URL that `wasi:http` wants separately: scheme,
//! authority, path with query. Deliberately small: no user info (put
//! credentials in a header), no fragment sent.

use super::HttpError;

/// A parsed `http(s)://authority/path?query` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) https: bool,
    /// `host` or `host:port`, as written.
    pub(crate) authority: String,
    /// Starts with `/`.
    pub(crate) path_with_query: String,
}

impl Url {
    pub(crate) fn parse(text: &str) -> Result<Self, HttpError> {
        let invalid = |why: &str| HttpError::InvalidRequest(format!("URL `{text}`: {why}"));
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| invalid("it has no scheme; use http:// or https://"))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(invalid("only http and https are supported")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(invalid("it has no host"));
        }
        if authority.contains('@') {
            return Err(invalid(
                "credentials in the URL are not supported; send them in a header",
            ));
        }
        if authority
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            || path
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(invalid("it contains spaces or control characters"));
        }
        let path_with_query = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Self {
            https,
            authority: authority.to_owned(),
            path_with_query,
        })
    }

    /// The host without the port, for messages (`[::1]` stays bracketed).
    pub(crate) fn host(&self) -> &str {
        let a = self.authority.as_str();
        if a.starts_with('[') {
            return a.split_inclusive(']').next().unwrap_or(a);
        }
        a.rsplit_once(':').map_or(a, |(h, _)| h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let u = Url::parse("https://api.openai.com/v1/chat?x=1#frag").unwrap();
        assert!(u.https);
        assert_eq!(u.authority, "api.openai.com");
        assert_eq!(u.path_with_query, "/v1/chat?x=1");
        assert_eq!(u.host(), "api.openai.com");
        let u = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.https, u.path_with_query.as_str()), (false, "/"));
        assert_eq!(u.host(), "127.0.0.1");
        assert_eq!(Url::parse("http://[::1]:9/?q").unwrap().host(), "[::1]");
        assert_eq!(Url::parse("http://h?q=1").unwrap().path_with_query, "/?q=1");
    }

    #[test]
    fn refusals_name_the_url() {
        for (url, why) in [
            ("api.openai.com/v1", "no scheme"),
            ("ftp://example.com", "only http and https"),
            ("https:///path", "no host"),
            ("https://user:pw@example.com", "credentials"),
            ("https://exa mple.com", "spaces"),
        ] {
            let err = Url::parse(url).unwrap_err().to_string();
            assert!(err.contains(url) && err.contains(why), "{err}");
        }
    }
}
