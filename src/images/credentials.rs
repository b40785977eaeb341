//! Registry credentials from a docker `config.json` (a mounted `kubernetes.io/dockerconfigjson`
//! Secret): `auths` entries with a base64 `auth` or `username`/`password`, or a `registrytoken`.
//! Credential helpers (`credsStore`, `credHelpers`) run programs and are not supported.

use crate::images::reference::normalize_host;
use crate::images::registry::Auth;
use base64::Engine as _;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a docker config.json: {reason}")]
    Parse { path: String, reason: String },
    #[error("{path}: auths.{registry}: {reason}")]
    Entry {
        path: String,
        registry: String,
        reason: String,
    },
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

#[derive(Clone, PartialEq, Eq)]
enum Secret {
    Basic(String, String),
    Bearer(String),
}

/// Credentials by registry host (normalised: no scheme, Docker Hub folded into `docker.io`).
#[derive(Clone, Default)]
pub struct Credentials {
    by_host: HashMap<String, Secret>,
}

impl std::fmt::Debug for Credentials {
    /// Names the registries only: secrets stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut hosts: Vec<&String> = self.by_host.keys().collect();
        hosts.sort();
        f.debug_struct("Credentials")
            .field("registries", &hosts)
            .finish()
    }
}

impl Credentials {
    /// Reads a config.json; an empty path means anonymous access everywhere.
    pub fn load(path: &str) -> Result<Credentials, CredentialsError> {
        if path.is_empty() {
            return Ok(Credentials::default());
        }
        let text =
            std::fs::read_to_string(Path::new(path)).map_err(|source| CredentialsError::Read {
                path: path.to_string(),
                source,
            })?;
        Credentials::parse(path, &text)
    }

    /// Parses a config.json's text; `path` only names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Credentials, CredentialsError> {
        let config: DockerConfig =
            serde_json::from_str(text).map_err(|e| CredentialsError::Parse {
                path: path.to_string(),
                reason: e.to_string(),
            })?;
        let mut by_host = HashMap::new();
        for (registry, entry) in config.auths {
            let entry_error = |reason: &str| CredentialsError::Entry {
                path: path.to_string(),
                registry: registry.clone(),
                reason: reason.to_string(),
            };
            let secret = if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| entry_error("`auth` is not base64"))?;
                let decoded =
                    String::from_utf8(decoded).map_err(|_| entry_error("`auth` is not UTF-8"))?;
                let (user, pass) = decoded
                    .split_once(':')
                    .ok_or_else(|| entry_error("`auth` is not base64 of user:password"))?;
                Secret::Basic(user.to_string(), pass.to_string())
            } else if let (Some(user), Some(pass)) = (entry.username, entry.password) {
                Secret::Basic(user, pass)
            } else if let Some(token) = entry.registrytoken.filter(|t| !t.is_empty()) {
                Secret::Bearer(token)
            } else {
                // An entry for a credential helper or identity token: nothing usable here.
                continue;
            };
            by_host.insert(normalize_host(&registry), secret);
        }
        Ok(Credentials { by_host })
    }

    /// What to send to a registry host (as in a reference or a mirror setting).
    pub fn for_host(&self, host: &str) -> Auth {
        match self.by_host.get(&normalize_host(host)) {
            Some(Secret::Basic(user, pass)) => Auth::Basic(user.clone(), pass.clone()),
            Some(Secret::Bearer(token)) => Auth::Bearer(token.clone()),
            None => Auth::Anonymous,
        }
    }

    /// Whether there is a credential for a registry host.
    pub fn has(&self, host: &str) -> bool {
        self.by_host.contains_key(&normalize_host(host))
    }

    /// The registry hosts with a credential (normalised).
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.by_host.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(auth: Auth) -> Option<(String, String)> {
        match auth {
            Auth::Basic(u, p) => Some((u, p)),
            _ => None,
        }
    }

    #[test]
    fn auth_and_username_password_entries() {
        let text = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpwYTpzcw=="},
            "registry.example.com:5000": {"username": "bob", "password": "s3cret"},
            "ghcr.io": {"registrytoken": "tok"},
            "helper.example.com": {}
        }, "credsStore": "desktop"}"#;
        let c = Credentials::parse("config.json", text).unwrap();
        assert_eq!(
            basic(c.for_host("index.docker.io")),
            Some(("user".into(), "pa:ss".into())),
            "password may contain ':'"
        );
        assert_eq!(
            basic(c.for_host("docker.io")),
            Some(("user".into(), "pa:ss".into()))
        );
        assert_eq!(
            basic(c.for_host("registry.example.com:5000")),
            Some(("bob".into(), "s3cret".into()))
        );
        assert!(matches!(c.for_host("ghcr.io"), Auth::Bearer(t) if t == "tok"));
        assert!(matches!(c.for_host("helper.example.com"), Auth::Anonymous));
        assert!(matches!(c.for_host("quay.io"), Auth::Anonymous));
        assert!(c.has("ghcr.io") && !c.has("quay.io"));
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret") && debug.contains("registry.example.com:5000"));
    }

    #[test]
    fn errors_name_the_entry() {
        let e = Credentials::parse("c.json", r#"{"auths": {"r.io": {"auth": "!!"}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("auths.r.io") && e.contains("base64"), "{e}");
        let e = Credentials::parse("c.json", "not json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.json"), "{e}");
        assert!(Credentials::load("").unwrap().is_empty());
        assert!(Credentials::load("/nonexistent/config.json").is_err());
    }
}
