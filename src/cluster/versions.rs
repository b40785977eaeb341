//! Kubernetes version strings and the native sidecar decision. Pure: no I/O.
//!
//! Native sidecars (init containers with `restartPolicy: Always`) need the `SidecarContainers`
//! feature in the apiserver *and* in the kubelet that runs the pod: beta and on by default from
//! 1.29. On an older apiserver the field is dropped silently (the agent becomes a blocking init
//! container); on an older kubelet the pod never leaves `Init`. So the fix is offered only when
//! the apiserver and every node's kubelet are 1.29 or newer.

use crate::engine::evaluate::NativeSidecarSupport;
use k8s_openapi::apimachinery::pkg::version::Info;
use std::fmt;

/// The first release with native sidecars on by default.
pub const MIN_NATIVE_SIDECARS: KubeVersion = KubeVersion {
    major: 1,
    minor: 29,
};

/// How many minor versions a kubelet may lag behind the apiserver (the version skew policy since
/// 1.28). An apiserver at 1.32 or newer therefore cannot have a kubelet older than 1.29.
pub const KUBELET_MAX_SKEW: u32 = 3;

/// A Kubernetes `major.minor` version: what feature gates depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("empty version")]
    Empty,
    #[error("{0:?} is not a Kubernetes version (expected v<major>.<minor>[.<patch>][-suffix])")]
    Malformed(String),
}

impl KubeVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        KubeVersion { major, minor }
    }

    /// Parses a `gitVersion` or `kubeletVersion`: `v1.30.2`, `1.29`, `v1.30.2-eks-1234`,
    /// `v1.28.9+k3s1`, `v1.31.0-gke.1234000`, `v1.32.0-alpha.1`. Only major and minor count.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(VersionError::Empty);
        }
        let malformed = || VersionError::Malformed(s.to_string());
        let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
        let (major, rest) = leading_number(t).ok_or_else(malformed)?;
        let rest = rest.strip_prefix('.').ok_or_else(malformed)?;
        let (minor, rest) = leading_number(rest).ok_or_else(malformed)?;
        // What follows the minor must be a separator, not more of a "number" (`1.29x`).
        match rest.chars().next() {
            None | Some('.' | '-' | '+') => Ok(KubeVersion { major, minor }),
            Some(_) => Err(malformed()),
        }
    }

    /// Parses the separate `major` and `minor` fields of `/version`, which some providers decorate
    /// (`"28+"` on GKE and EKS): leading digits count, a trailing `+` or suffix is ignored.
    pub fn from_parts(major: &str, minor: &str) -> Result<Self, VersionError> {
        if major.trim().is_empty() || minor.trim().is_empty() {
            return Err(VersionError::Empty);
        }
        let malformed = || VersionError::Malformed(format!("{major}.{minor}"));
        let (ma, _) = leading_number(major.trim()).ok_or_else(malformed)?;
        let (mi, _) = leading_number(minor.trim()).ok_or_else(malformed)?;
        Ok(KubeVersion {
            major: ma,
            minor: mi,
        })
    }

    /// True when this version has native sidecars on by default.
    pub fn supports_native_sidecars(self) -> bool {
        self >= MIN_NATIVE_SIDECARS
    }
}

/// Splits the leading ASCII digits off `s` (at least one, no overflow).
fn leading_number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let n = s[..end].parse().ok()?;
    Some((n, &s[end..]))
}

/// What `/version` says about the apiserver, reduced to what decides features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiServerVersion {
    /// The binary's version.
    pub version: KubeVersion,
    /// `--emulated-version` (1.31+): features follow this, not the binary, when it is older.
    pub emulated: Option<KubeVersion>,
    /// How to name the version to people: the `gitVersion` as served (`v1.30.2-eks-1234`).
    pub display: String,
}

impl ApiServerVersion {
    /// Reads `/version`. `gitVersion` is preferred; `major`/`minor` (possibly `"28+"`) are the
    /// fallback when it is missing or unreadable. Both unreadable is an error.
    pub fn from_info(info: &Info) -> Result<Self, VersionError> {
        let version = match KubeVersion::parse(&info.git_version) {
            Ok(v) => v,
            Err(git_err) => match KubeVersion::from_parts(&info.major, &info.minor) {
                Ok(v) => v,
                Err(_) => return Err(git_err),
            },
        };
        let emulated = match (&info.emulation_major, &info.emulation_minor) {
            (Some(ma), Some(mi)) => KubeVersion::from_parts(ma, mi).ok(),
            _ => None,
        };
        let display = if info.git_version.trim().is_empty() {
            format!("v{version}")
        } else {
            info.git_version.trim().to_string()
        };
        Ok(ApiServerVersion {
            version,
            emulated,
            display,
        })
    }

    /// The version whose features the apiserver serves: the emulated one when older.
    pub fn effective(&self) -> KubeVersion {
        match self.emulated {
            Some(e) if e < self.version => e,
            _ => self.version,
        }
    }
}

/// One node's kubelet, as its status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeKubelet {
    pub name: String,
    /// `status.nodeInfo.kubeletVersion`; empty while the kubelet has not reported yet.
    pub kubelet_version: String,
}

impl NodeKubelet {
    pub fn new(name: impl Into<String>, kubelet_version: impl Into<String>) -> Self {
        NodeKubelet {
            name: name.into(),
            kubelet_version: kubelet_version.into(),
        }
    }
}

/// Decides from the apiserver's version and the nodes' kubelets.
///
/// - The apiserver (its emulated version when older) below 1.29: unsupported.
/// - Any node whose kubelet is below 1.29, or reports a version that cannot be read: unsupported,
///   naming the first such node (by name) and how many others there are.
/// - A node that has not reported a kubelet version yet is skipped: it is not ready, so nothing
///   runs there, and its report arrives as a change that is decided again.
/// - No node with a version: the version skew policy bounds kubelets to at most three minors
///   behind the apiserver, so an apiserver at 1.32 or newer guarantees 1.29 kubelets; below that
///   the answer is unsupported until a node reports.
pub fn decide(apiserver: &ApiServerVersion, nodes: &[NodeKubelet]) -> NativeSidecarSupport {
    let effective = apiserver.effective();
    if !effective.supports_native_sidecars() {
        let what = match apiserver.emulated {
            Some(e) if e < apiserver.version => {
                format!("the apiserver {} emulates {e}", apiserver.display)
            }
            _ => format!("the apiserver is {}", apiserver.display),
        };
        return NativeSidecarSupport::Unsupported(format!(
            "{what}; native sidecars need Kubernetes {MIN_NATIVE_SIDECARS} or newer"
        ));
    }

    let mut reported = 0usize;
    let mut bad: Vec<(&str, String)> = Vec::new();
    for node in nodes {
        let raw = node.kubelet_version.trim();
        if raw.is_empty() {
            continue;
        }
        reported += 1;
        match KubeVersion::parse(raw) {
            Ok(v) if v.supports_native_sidecars() => {}
            Ok(_) => bad.push((&node.name, format!("runs kubelet {raw}"))),
            Err(_) => bad.push((&node.name, format!("reports kubelet version {raw:?}"))),
        }
    }
    if !bad.is_empty() {
        bad.sort_by(|a, b| a.0.cmp(b.0));
        let (name, what) = &bad[0];
        let more = match bad.len() - 1 {
            0 => String::new(),
            1 => " (and 1 other node)".to_string(),
            n => format!(" (and {n} other nodes)"),
        };
        return NativeSidecarSupport::Unsupported(format!(
            "node {name} {what}{more}; native sidecars need kubelet {MIN_NATIVE_SIDECARS} or newer on every node"
        ));
    }
    if reported == 0 {
        let oldest_possible = KubeVersion::new(
            effective.major,
            effective.minor.saturating_sub(KUBELET_MAX_SKEW),
        );
        if !oldest_possible.supports_native_sidecars() {
            return NativeSidecarSupport::Unsupported(format!(
                "no node has reported a kubelet version yet, and with the apiserver at {} a kubelet may be as old as {oldest_possible}",
                apiserver.display
            ));
        }
    }
    NativeSidecarSupport::Supported
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KubeVersion {
        KubeVersion::parse(s).unwrap()
    }

    fn api(git: &str) -> ApiServerVersion {
        ApiServerVersion::from_info(&Info {
            git_version: git.into(),
            ..Info::default()
        })
        .unwrap()
    }

    fn unsupported(s: NativeSidecarSupport) -> String {
        match s {
            NativeSidecarSupport::Unsupported(why) => why,
            NativeSidecarSupport::Supported => panic!("expected Unsupported, got Supported"),
        }
    }

    #[test]
    fn parses_plain_and_vendor_versions() {
        assert_eq!(v("v1.30.2"), KubeVersion::new(1, 30));
        assert_eq!(v("1.29"), KubeVersion::new(1, 29));
        assert_eq!(v("1.29.0"), KubeVersion::new(1, 29));
        assert_eq!(v("  v1.31.1  "), KubeVersion::new(1, 31));
        assert_eq!(v("v1.30.2-eks-1234abc"), KubeVersion::new(1, 30));
        assert_eq!(v("v1.28.9+k3s1"), KubeVersion::new(1, 28));
        assert_eq!(v("v1.31.0-gke.1234000"), KubeVersion::new(1, 31));
        assert_eq!(v("v1.29.4+rke2r1"), KubeVersion::new(1, 29));
        assert_eq!(v("v1.32.0-alpha.1"), KubeVersion::new(1, 32));
        assert_eq!(v("v1.27.16-eks-a18cd3a"), KubeVersion::new(1, 27));
        assert_eq!(v("V1.33.0"), KubeVersion::new(1, 33));
        assert_eq!(v("v2.0.0"), KubeVersion::new(2, 0));
    }

    #[test]
    fn rejects_what_is_not_a_version() {
        assert_eq!(KubeVersion::parse(""), Err(VersionError::Empty));
        assert_eq!(KubeVersion::parse("   "), Err(VersionError::Empty));
        for bad in [
            "v",
            "1",
            "v1",
            "v1.",
            "1.x",
            "x1.29",
            "vv1.29",
            "1.29x",
            "-1.29",
            "1..29",
            "99999999999.1",
            "1.99999999999",
            "unknown",
        ] {
            assert!(
                matches!(KubeVersion::parse(bad), Err(VersionError::Malformed(_))),
                "{bad:?} parsed"
            );
        }
    }

    #[test]
    fn orders_by_minor_numerically() {
        assert!(v("1.9") < v("1.10"));
        assert!(v("1.28.99") < v("1.29.0"));
        assert!(v("2.0") > v("1.99"));
        assert!(!v("v1.28.15").supports_native_sidecars());
        assert!(v("v1.29.0").supports_native_sidecars());
        assert!(v("v1.33.1").supports_native_sidecars());
    }

    #[test]
    fn major_minor_fields_with_plus() {
        assert_eq!(
            KubeVersion::from_parts("1", "28+"),
            Ok(KubeVersion::new(1, 28))
        );
        assert_eq!(
            KubeVersion::from_parts(" 1 ", "30"),
            Ok(KubeVersion::new(1, 30))
        );
        assert_eq!(KubeVersion::from_parts("", "30"), Err(VersionError::Empty));
        assert!(KubeVersion::from_parts("one", "30").is_err());
        assert!(KubeVersion::from_parts("1", "+").is_err());
    }

    #[test]
    fn apiserver_prefers_git_version_and_falls_back_to_fields() {
        let info = Info {
            git_version: "v1.30.2-eks-1234".into(),
            major: "1".into(),
            minor: "30+".into(),
            ..Info::default()
        };
        let a = ApiServerVersion::from_info(&info).unwrap();
        assert_eq!(a.version, KubeVersion::new(1, 30));
        assert_eq!(a.display, "v1.30.2-eks-1234");

        let info = Info {
            git_version: "garbage".into(),
            major: "1".into(),
            minor: "28+".into(),
            ..Info::default()
        };
        let a = ApiServerVersion::from_info(&info).unwrap();
        assert_eq!(a.version, KubeVersion::new(1, 28));

        let info = Info {
            major: "1".into(),
            minor: "31".into(),
            ..Info::default()
        };
        let a = ApiServerVersion::from_info(&info).unwrap();
        assert_eq!(a.display, "v1.31");

        let info = Info {
            git_version: "garbage".into(),
            ..Info::default()
        };
        assert!(matches!(
            ApiServerVersion::from_info(&info),
            Err(VersionError::Malformed(s)) if s == "garbage"
        ));
        assert_eq!(
            ApiServerVersion::from_info(&Info::default()),
            Err(VersionError::Empty)
        );
    }

    #[test]
    fn all_at_or_above_1_29_is_supported() {
        let nodes = [
            NodeKubelet::new("a", "v1.29.0"),
            NodeKubelet::new("b", "v1.30.4-eks-1"),
            NodeKubelet::new("c", "v1.31.1+k3s1"),
        ];
        assert_eq!(
            decide(&api("v1.31.2"), &nodes),
            NativeSidecarSupport::Supported
        );
        assert_eq!(
            decide(&api("v1.29.0"), &nodes[..1]),
            NativeSidecarSupport::Supported
        );
    }

    #[test]
    fn old_apiserver_is_named() {
        let nodes = [NodeKubelet::new("a", "v1.28.3")];
        let why = unsupported(decide(&api("v1.28.3-eks-99"), &nodes));
        assert_eq!(
            why,
            "the apiserver is v1.28.3-eks-99; native sidecars need Kubernetes 1.29 or newer"
        );
    }

    #[test]
    fn emulated_older_version_counts() {
        let a = ApiServerVersion::from_info(&Info {
            git_version: "v1.31.0".into(),
            emulation_major: Some("1".into()),
            emulation_minor: Some("28".into()),
            ..Info::default()
        })
        .unwrap();
        assert_eq!(a.effective(), KubeVersion::new(1, 28));
        let why = unsupported(decide(&a, &[NodeKubelet::new("n", "v1.31.0")]));
        assert!(
            why.starts_with("the apiserver v1.31.0 emulates 1.28;"),
            "{why}"
        );

        // Emulating the same (or an unreadable) version changes nothing.
        let a = ApiServerVersion::from_info(&Info {
            git_version: "v1.33.0".into(),
            emulation_major: Some("1".into()),
            emulation_minor: Some("33".into()),
            ..Info::default()
        })
        .unwrap();
        assert_eq!(a.effective(), KubeVersion::new(1, 33));
    }

    #[test]
    fn old_kubelet_is_named() {
        let nodes = [
            NodeKubelet::new("ip-10-0-1-7", "v1.30.1"),
            NodeKubelet::new("ip-10-0-1-5", "v1.28.9-eks-036c24b"),
        ];
        let why = unsupported(decide(&api("v1.30.2"), &nodes));
        assert_eq!(
            why,
            "node ip-10-0-1-5 runs kubelet v1.28.9-eks-036c24b; native sidecars need kubelet 1.29 or newer on every node"
        );
    }

    #[test]
    fn several_old_kubelets_name_the_first_and_count_the_rest() {
        let nodes = [
            NodeKubelet::new("c", "v1.27.1"),
            NodeKubelet::new("a", "v1.30.1"),
            NodeKubelet::new("b", "v1.28.0"),
            NodeKubelet::new("d", "v1.28.0"),
        ];
        let why = unsupported(decide(&api("v1.30.2"), &nodes));
        assert!(
            why.starts_with("node b runs kubelet v1.28.0 (and 2 other nodes);"),
            "{why}"
        );
        let why = unsupported(decide(&api("v1.30.2"), &nodes[..3]));
        assert!(why.contains("(and 1 other node);"), "{why}");
    }

    #[test]
    fn unreadable_kubelet_version_is_unsupported() {
        let nodes = [NodeKubelet::new("odd", "banana")];
        let why = unsupported(decide(&api("v1.33.0"), &nodes));
        assert!(
            why.starts_with("node odd reports kubelet version \"banana\";"),
            "{why}"
        );
    }

    #[test]
    fn node_without_version_yet_is_skipped() {
        let nodes = [
            NodeKubelet::new("new", ""),
            NodeKubelet::new("old", "v1.30.0"),
        ];
        assert_eq!(
            decide(&api("v1.30.0"), &nodes),
            NativeSidecarSupport::Supported
        );
    }

    #[test]
    fn no_nodes_relies_on_the_skew_policy() {
        // 1.32 - 3 = 1.29: every kubelet the apiserver accepts has native sidecars.
        assert_eq!(
            decide(&api("v1.32.0"), &[]),
            NativeSidecarSupport::Supported
        );
        assert_eq!(
            decide(&api("v1.35.1"), &[NodeKubelet::new("pending", "")]),
            NativeSidecarSupport::Supported
        );
        // 1.31 - 3 = 1.28: a 1.28 kubelet could still join.
        let why = unsupported(decide(&api("v1.31.4"), &[]));
        assert_eq!(
            why,
            "no node has reported a kubelet version yet, and with the apiserver at v1.31.4 a kubelet may be as old as 1.28"
        );
        // The apiserver check comes first.
        let why = unsupported(decide(&api("v1.28.0"), &[]));
        assert!(why.starts_with("the apiserver is v1.28.0"), "{why}");
    }
}
