//! Image references as written in pods: parsing (Docker Hub defaults), cache keys and registry
//! host names as credentials and mirrors name them.

use oci_client::Reference;

/// Docker Hub's names: the one references use, and the ones config.json files and mirror
/// settings use for it.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_ALIASES: &[&str] = &["index.docker.io", "registry-1.docker.io", "docker.io"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{image}`: {reason}")]
pub struct ReferenceError {
    pub image: String,
    pub reason: String,
}

/// Parses an image reference the way the kubelet does: no registry means Docker Hub, a
/// one-part Docker Hub name is under `library/`, no tag means `latest`.
pub fn parse(image: &str) -> Result<Reference, ReferenceError> {
    let trimmed = image.trim();
    if trimmed.is_empty() {
        return Err(ReferenceError {
            image: image.to_string(),
            reason: "empty".into(),
        });
    }
    trimmed.parse::<Reference>().map_err(|e| ReferenceError {
        image: image.to_string(),
        reason: e.to_string(),
    })
}

/// The cache key of a reference: `registry/repository@digest` when pinned (a digest wins over a
/// tag, as in the kubelet), else `registry/repository:tag`.
pub fn cache_key(r: &Reference) -> String {
    match r.digest() {
        Some(digest) => digest_key(r, digest),
        None => format!(
            "{}/{}:{}",
            r.registry(),
            r.repository(),
            r.tag().unwrap_or("latest")
        ),
    }
}

/// The key of a repository's manifest by digest.
pub fn digest_key(r: &Reference, digest: &str) -> String {
    format!("{}/{}@{}", r.registry(), r.repository(), digest)
}

/// Whether the reference names its content by digest (cached for good).
pub fn is_pinned(r: &Reference) -> bool {
    r.digest().is_some()
}

/// A registry host as credentials and mirror settings name it: no scheme, no path, lowercase,
/// Docker Hub's aliases folded into `docker.io`.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let host = host
        .strip_prefix("https://")
        .or_else(|| host.strip_prefix("http://"))
        .unwrap_or(host);
    let host = host.split('/').next().unwrap_or(host).to_ascii_lowercase();
    if DOCKER_HUB_ALIASES.contains(&host.as_str()) {
        DOCKER_HUB.to_string()
    } else {
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_defaults() {
        let r = parse("nginx").unwrap();
        assert_eq!(cache_key(&r), "docker.io/library/nginx:latest");
        let r = parse("ghcr.io/org/app:1.2").unwrap();
        assert_eq!(cache_key(&r), "ghcr.io/org/app:1.2");
        let r = parse("127.0.0.1:5000/t/a:1").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert!(!is_pinned(&r));
    }

    #[test]
    fn digest_wins_over_tag() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let r = parse(&format!("quay.io/a/b:1@{d}")).unwrap();
        assert!(is_pinned(&r));
        assert_eq!(cache_key(&r), format!("quay.io/a/b@{d}"));
    }

    #[test]
    fn bad_references_are_errors() {
        assert!(parse("").is_err());
        assert!(parse("app/UPPER").is_err());
        assert!(parse("a b").is_err());
    }

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(normalize_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_host("registry-1.docker.io"), "docker.io");
        assert_eq!(normalize_host("Quay.IO"), "quay.io");
        assert_eq!(normalize_host("http://127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
