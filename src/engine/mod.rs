//! The analysis engine: pure functions from object JSON to findings. No I/O, no async.

pub mod argv;
pub mod config;
pub mod config_map_refs;
pub mod daemons;
pub mod dialect;
pub mod durations;
pub mod evaluate;
pub mod evaluation;
pub mod explain;
pub mod findings;
pub mod image_config;
pub mod injected;
pub mod kubelet;
pub mod launch;
pub mod launchers;
pub mod lexical;
pub mod mounted_scripts;
pub mod parser_config;
pub mod prescreen;
pub mod rules;
pub mod script;
pub mod script_facts;
pub mod shell_walk;
pub mod side_agent_catalogue;
pub mod side_agents;
pub mod stop_hack;
pub mod workload;

pub use config::{Action, Config, ConfigError, Mode};
pub use evaluate::{ContainerReport, Engine, Evaluation, Finding};
pub use launch::LaunchClass;
pub use rules::RuleId;
pub use script::{Dialect, ScriptAnalyzer, ScriptFacts, ScriptVerdict, UnparsedReason};
pub use workload::{ObjectRef, Section, WorkloadError};
