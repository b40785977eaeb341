//! `pidone serve`, the real binary, as a child process: production settings (parse workers,
//! the blocking pool's size), and memory measured on the server alone.

use std::time::{Duration, Instant};

/// Resident memory of a process and its children (the parse workers): what the container's
/// memory limit counts.
pub fn rss_tree(pid: u32) -> u64 {
    let own = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    own + children
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
        .map(rss_tree)
        .sum::<u64>()
}

/// `pidone serve`, the real binary, as a child process: memory is measured on it alone.
pub struct Served {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
    pub admin: std::net::SocketAddr,
    pub ca_pem: String,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

impl Served {
    pub async fn start(config: &str, args: &[&str]) -> Served {
        Served::launch(config, args, false).await
    }

    /// [`Served::start`] with its log (info and up) on the returned stdout.
    pub async fn start_logging(
        config: &str,
        args: &[&str],
    ) -> (Served, tokio::process::ChildStdout) {
        let mut served = Served::launch(config, args, true).await;
        let stdout = served.child.stdout.take().expect("piped stdout");
        let stdout = tokio::process::ChildStdout::from_std(stdout).unwrap();
        (served, stdout)
    }

    async fn launch(config: &str, args: &[&str], logging: bool) -> Served {
        super::install_crypto();
        let dir = tempfile::tempdir().unwrap();
        let pki = super::Pki::new();
        let pair = pki.serving();
        let (cert, key, conf) = (
            dir.path().join("tls.crt"),
            dir.path().join("tls.key"),
            dir.path().join("config.yaml"),
        );
        std::fs::write(&cert, &pair.cert_pem).unwrap();
        std::fs::write(&key, &pair.key_pem).unwrap();
        std::fs::write(&conf, config).unwrap();
        let (addr, admin) = (free_port(), free_port());
        // ETXTBSY: another test's thread may fork while a file it writes is open; retry.
        let mut tries = 0;
        let child = loop {
            let spawned = std::process::Command::new(env!("CARGO_BIN_EXE_pidone"))
                .arg("serve")
                .arg("--config")
                .arg(&conf)
                .arg("--tls-cert")
                .arg(&cert)
                .arg("--tls-key")
                .arg(&key)
                .args(["--listen", &addr.to_string()])
                .args(["--metrics-listen", &admin.to_string()])
                .args(args)
                .env("RUST_LOG", if logging { "info" } else { "error" })
                .stdout(if logging {
                    std::process::Stdio::piped()
                } else {
                    std::process::Stdio::null()
                })
                .stderr(std::process::Stdio::null())
                .spawn();
            match spawned {
                Err(e) if e.raw_os_error() == Some(26) && tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => break other.unwrap(),
            }
        };
        let served = Served {
            child,
            addr,
            admin,
            ca_pem: pki.ca_pem(),
            _dir: dir,
        };
        let started = Instant::now();
        while tokio::net::TcpStream::connect(admin).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "pidone serve did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        served
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn apiserver(&self) -> super::ApiServer {
        super::ApiServer::new(&self.ca_pem, self.addr)
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}
