//! Programs that fork into the background on their own, and the flags that keep them in the
//! foreground: `sshd` without `-D`, `crond` without `-f`, `redis-server --daemonize yes`,
//! `service X start`, `pg_ctl start`. Started from a script, each leaves a second long-running
//! process with no `&` in sight.

use crate::engine::launchers::basename;

/// How a catalogued program's command line says it daemonises.
enum Rule {
    /// Daemonises unless one of these flags is given.
    Unless(&'static [Flag]),
    /// Daemonises when one of these flags is given.
    When(&'static [Flag]),
}

/// A flag on a command line.
enum Flag {
    /// A short option letter, alone or in a cluster (`-D`, `-De`).
    Short(char),
    /// A long option or word, exactly or with `=value` (`--nofork`, `--daemon=yes`).
    Long(&'static str),
    /// An option with this value, separate or after `=` (`--daemonize yes`, `-k start`).
    Pair(&'static str, &'static str),
    /// An operand (subcommand) anywhere (`start`).
    Word(&'static str),
}

struct Daemon {
    names: &'static [&'static str],
    rule: Rule,
}

use Flag::{Long, Pair, Short, Word};

const DAEMONS: &[Daemon] = &[
    Daemon {
        names: &["sshd"],
        rule: Rule::Unless(&[Short('D'), Short('d'), Short('i')]),
    },
    Daemon {
        names: &["crond", "cron"],
        rule: Rule::Unless(&[Short('f'), Short('n')]),
    },
    Daemon {
        names: &["redis-server", "redis-sentinel", "keydb-server"],
        rule: Rule::When(&[Pair("--daemonize", "yes")]),
    },
    Daemon {
        names: &["php-fpm"],
        rule: Rule::When(&[Short('D'), Long("--daemonize")]),
    },
    Daemon {
        names: &["memcached"],
        rule: Rule::When(&[Short('d'), Long("--daemon")]),
    },
    Daemon {
        names: &["rsyslogd", "syslogd", "klogd"],
        rule: Rule::Unless(&[Short('n')]),
    },
    Daemon {
        names: &["service"],
        rule: Rule::When(&[Word("start"), Word("restart")]),
    },
    Daemon {
        names: &["pg_ctl", "pg_ctlcluster"],
        rule: Rule::When(&[Word("start"), Word("restart")]),
    },
    Daemon {
        names: &["apachectl", "apache2ctl"],
        rule: Rule::When(&[Word("start"), Word("restart"), Pair("-k", "start")]),
    },
    Daemon {
        names: &["httpd", "apache2"],
        rule: Rule::When(&[Pair("-k", "start")]),
    },
    Daemon {
        names: &["mongod"],
        rule: Rule::When(&[Long("--fork")]),
    },
    Daemon {
        names: &["mysqld"],
        rule: Rule::When(&[Long("--daemonize")]),
    },
    Daemon {
        names: &["gunicorn"],
        rule: Rule::When(&[Short('D'), Long("--daemon")]),
    },
    Daemon {
        names: &["uwsgi"],
        rule: Rule::When(&[Long("--daemonize"), Long("--daemonize2")]),
    },
    Daemon {
        names: &["haproxy"],
        rule: Rule::When(&[Short('D')]),
    },
    Daemon {
        names: &["dnsmasq"],
        rule: Rule::Unless(&[
            Short('k'),
            Short('d'),
            Long("--keep-in-foreground"),
            Long("--no-daemon"),
        ]),
    },
    Daemon {
        names: &["named"],
        rule: Rule::Unless(&[Short('f'), Short('g')]),
    },
    Daemon {
        names: &["ntpd"],
        rule: Rule::Unless(&[Short('n'), Short('d')]),
    },
    Daemon {
        names: &["chronyd"],
        rule: Rule::Unless(&[Short('d'), Short('n')]),
    },
    Daemon {
        names: &["smbd", "nmbd"],
        rule: Rule::Unless(&[Short('F'), Long("--foreground"), Short('i')]),
    },
    Daemon {
        names: &["dropbear"],
        rule: Rule::Unless(&[Short('F')]),
    },
    Daemon {
        names: &["lighttpd"],
        rule: Rule::Unless(&[Short('D')]),
    },
    Daemon {
        names: &["squid"],
        rule: Rule::Unless(&[Short('N')]),
    },
    Daemon {
        names: &["dbus-daemon"],
        rule: Rule::When(&[Long("--fork")]),
    },
    Daemon {
        names: &["rpcbind", "atd", "zabbix_agentd", "snmpd", "cupsd"],
        rule: Rule::Unless(&[Short('f'), Short('F')]),
    },
    Daemon {
        names: &["rsync"],
        rule: Rule::When(&[Long("--daemon")]),
    },
    Daemon {
        names: &["openvpn"],
        rule: Rule::When(&[Long("--daemon")]),
    },
    Daemon {
        names: &["start-stop-daemon"],
        rule: Rule::When(&[Short('b'), Long("--background")]),
    },
    Daemon {
        names: &["daemonize", "daemon"],
        rule: Rule::Unless(&[]),
    },
    Daemon {
        names: &["pm2"],
        rule: Rule::When(&[Word("start"), Word("restart"), Word("resurrect")]),
    },
    Daemon {
        names: &["forever"],
        rule: Rule::When(&[Word("start")]),
    },
];

fn matches(flag: &Flag, args: &[&str]) -> bool {
    match flag {
        Short(letter) => args.iter().any(|a| {
            a.strip_prefix('-').is_some_and(|cluster| {
                !cluster.starts_with('-')
                    && cluster
                        .chars()
                        .take_while(|c| c.is_ascii_alphabetic())
                        .any(|c| c == *letter)
            })
        }),
        Long(name) => args
            .iter()
            .any(|a| *a == *name || a.strip_prefix(name).is_some_and(|r| r.starts_with('='))),
        Pair(name, value) => {
            args.windows(2).any(|w| w[0] == *name && w[1] == *value)
                || args.iter().any(|a| {
                    a.strip_prefix(name)
                        .and_then(|r| r.strip_prefix('='))
                        .is_some_and(|v| v == *value)
                })
        }
        Word(word) => args.iter().any(|a| a == word),
    }
}

/// Whether `program ARGS...` forks into the background by itself. `args` excludes the program.
pub fn daemonizes(program: &str, args: &[&str]) -> bool {
    let base = basename(program);
    // `/etc/init.d/X start` is `service X start`.
    if program.starts_with("/etc/init.d/") || program.starts_with("/etc/rc.d/") {
        return args.iter().any(|a| *a == "start" || *a == "restart");
    }
    let name = if base.starts_with("php-fpm") {
        "php-fpm"
    } else {
        base
    };
    let Some(d) = DAEMONS.iter().find(|d| d.names.contains(&name)) else {
        return false;
    };
    match d.rule {
        Rule::Unless(flags) => !flags.iter().any(|f| matches(f, args)),
        Rule::When(flags) => flags.iter().any(|f| matches(f, args)),
    }
}

#[cfg(test)]
mod tests {
    use super::daemonizes;

    #[test]
    fn catalogue_reads_foreground_flags() {
        assert!(daemonizes("/usr/sbin/sshd", &[]));
        assert!(!daemonizes("/usr/sbin/sshd", &["-D", "-e"]));
        assert!(!daemonizes("sshd", &["-De"]));
        assert!(daemonizes("crond", &["-l", "2"]));
        assert!(!daemonizes("crond", &["-f", "-l", "2"]));
        assert!(daemonizes("redis-server", &["--daemonize", "yes"]));
        assert!(!daemonizes("redis-server", &["--daemonize", "no"]));
        assert!(!daemonizes("redis-server", &["/etc/redis.conf"]));
        assert!(daemonizes("service", &["nginx", "start"]));
        assert!(daemonizes("pg_ctl", &["-D", "/data", "start"]));
        assert!(daemonizes("/etc/init.d/ssh", &["start"]));
        assert!(daemonizes("php-fpm8.2", &["-D"]));
        assert!(!daemonizes("php-fpm8.2", &["-F"]));
        assert!(!daemonizes("nginx", &[]));
    }
}
