//! The agent's options: each flag has an environment fallback as written in `.env`, and everything
//! is validated once, here, into an [`AgentConfig`] the rest of the agent can trust.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Probe targets used when none are configured: three independent public resolvers, reached by IP
/// address so that a DNS failure and an ISP failure can be told apart. Tests always override them.
pub const DEFAULT_PROBE_TARGETS: &str = "1.1.1.1:443,8.8.8.8:53,9.9.9.9:443";

/// Sends a heartbeat to ISP Monitor every interval, records outages while the endpoint cannot be
/// reached, and reports them once it can.
///
/// Exit codes: 0 success; 1 the heartbeat failed (--once); 2 bad usage or configuration.
#[derive(Debug, Parser)]
#[command(name = "heartbeat-agent", version, about, long_about = None)]
pub struct Options {
    /// Heartbeat endpoint, e.g. https://APP.azurewebsites.net/api/ping.
    #[arg(long, env = "HEARTBEAT_URL", hide_env_values = true)]
    pub url: Option<String>,
    /// Device name recorded with each heartbeat [default: this machine's host name].
    #[arg(long, env = "HEARTBEAT_DEVICE")]
    pub device: Option<String>,
    /// Seconds between heartbeats.
    #[arg(
        long,
        env = "HEARTBEAT_INTERVAL",
        default_value = "60",
        allow_hyphen_values = true
    )]
    pub interval: String,
    /// Function key, sent as the x-functions-key header.
    #[arg(long, env = "HEARTBEAT_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Note sent with each heartbeat.
    #[arg(long, env = "HEARTBEAT_NOTE", default_value = "")]
    pub note: String,
    /// Seconds to wait for each attempt.
    #[arg(
        long,
        env = "HEARTBEAT_TIMEOUT",
        default_value = "10",
        allow_hyphen_values = true
    )]
    pub timeout: String,
    /// Where the outage journal is kept [default: $XDG_STATE_HOME/isp-monitor or
    /// ~/.local/state/isp-monitor].
    #[arg(long, env = "HEARTBEAT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// host:port targets probed by TCP while down, comma-separated, to tell an ISP outage from a
    /// DNS or cloud one.
    #[arg(long, env = "HEARTBEAT_PROBE_TARGETS", default_value = DEFAULT_PROBE_TARGETS)]
    pub probe_targets: String,
    /// Your router as host:port (e.g. 192.168.1.1:80): probed while down to recognise a LAN fault.
    #[arg(long, env = "HEARTBEAT_GATEWAY")]
    pub gateway: Option<String>,
    /// Seconds between attempts while down (how precisely the end of an outage is caught).
    #[arg(
        long,
        env = "HEARTBEAT_PROBE_INTERVAL",
        default_value = "5",
        allow_hyphen_values = true
    )]
    pub probe_interval: String,
    /// Measure connection quality while up (on or off): after each heartbeat, a few TCP connects
    /// to each probe target and the endpoint's DNS lookup, timed and sent with the next heartbeat.
    #[arg(long, env = "HEARTBEAT_QUALITY", default_value = "on")]
    pub quality: String,
    /// Connect attempts per probe target in each quality measurement (1 to 20; at most 100 in all).
    #[arg(
        long,
        env = "HEARTBEAT_QUALITY_COUNT",
        default_value = "3",
        allow_hyphen_values = true
    )]
    pub quality_count: String,
    /// Seconds each quality connect attempt and DNS lookup may take (1 to 60; cut so that all
    /// attempts fit in three quarters of the interval).
    #[arg(
        long,
        env = "HEARTBEAT_QUALITY_TIMEOUT",
        default_value = "3",
        allow_hyphen_values = true
    )]
    pub quality_timeout: String,
    /// Send one heartbeat and exit (0 sent, 1 failed). Wins over --daemon, as in the original agent.
    #[arg(long)]
    pub once: bool,
    /// Keep sending, one heartbeat per interval, until stopped.
    #[arg(long)]
    pub daemon: bool,
    /// Log every attempt and probe.
    #[arg(long, short)]
    pub verbose: bool,
}

/// How the agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One heartbeat, then exit. Also the default without `--daemon`, as in the original agent.
    Once,
    Daemon,
}

/// A `host:port` to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for ProbeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How connection quality is measured (docs/agent.md, "Connection quality").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualityConfig {
    pub enabled: bool,
    /// Connect attempts per probe target.
    pub count: u32,
    /// The longest one attempt or lookup may take.
    pub timeout: Duration,
}

/// Most connect attempts per target in one quality measurement.
pub const MAX_QUALITY_COUNT: u32 = 20;
/// The longest quality timeout, in seconds.
pub const MAX_QUALITY_TIMEOUT_S: u64 = 60;

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub url: reqwest::Url,
    pub device: String,
    pub interval: Duration,
    pub key: Option<String>,
    pub note: String,
    pub timeout: Duration,
    pub state_dir: PathBuf,
    pub probe_targets: Vec<ProbeTarget>,
    pub gateway: Option<ProbeTarget>,
    pub probe_interval: Duration,
    pub quality: QualityConfig,
    pub mode: Mode,
    pub verbose: bool,
}

impl AgentConfig {
    /// The endpoint without what may be secret (user name and password, the query string that
    /// may carry the key): safe to print.
    pub fn display_url(&self) -> String {
        super::transport::printable_url(&self.url)
    }
}

impl Options {
    /// Checks every option and says which one to fix.
    pub fn validate(self) -> Result<AgentConfig, String> {
        let url_text = self.url.filter(|url| !url.trim().is_empty()).ok_or(
            "no endpoint: pass --url or set HEARTBEAT_URL (deploy.sh writes it into .env)",
        )?;
        let url = reqwest::Url::parse(url_text.trim())
            .map_err(|err| format!("--url / HEARTBEAT_URL is not a valid URL ({err})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("--url / HEARTBEAT_URL must be an http:// or https:// URL".to_owned());
        }
        if url.path().trim_end_matches('/').is_empty() {
            let mut example = reqwest::Url::parse(&super::transport::printable_url(&url))
                .map_err(|err| format!("--url / HEARTBEAT_URL is not a valid URL ({err})"))?;
            example.set_path("/api/ping");
            return Err(format!(
                "--url / HEARTBEAT_URL has no path: it should end in /api/ping, e.g. {example}"
            ));
        }
        let device = match self
            .device
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
        {
            Some(device) => device,
            None => crate::hostname(),
        };
        crate::heartbeat::checked_text("device", &device, crate::heartbeat::MAX_DEVICE_CHARS)
            .map_err(|err| format!("--device / HEARTBEAT_DEVICE: {err}"))?;
        crate::heartbeat::checked_text("note", &self.note, crate::heartbeat::MAX_NOTE_CHARS)
            .map_err(|err| format!("--note / HEARTBEAT_NOTE: {err}"))?;
        let probe_targets = if self.probe_targets.trim().is_empty() {
            DEFAULT_PROBE_TARGETS
        } else {
            &self.probe_targets
        };
        let probe_targets = probe_targets
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                parse_target(t)
                    .map_err(|err| format!("--probe-targets / HEARTBEAT_PROBE_TARGETS: {err}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if probe_targets.is_empty() {
            return Err(
                "--probe-targets / HEARTBEAT_PROBE_TARGETS is empty; give at least one host:port"
                    .to_owned(),
            );
        }
        let gateway = match self
            .gateway
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty())
        {
            Some(gateway) => Some(
                parse_target(gateway)
                    .map_err(|err| format!("--gateway / HEARTBEAT_GATEWAY: {err}"))?,
            ),
            None => None,
        };
        let quality = quality_config(
            &self.quality,
            &self.quality_count,
            &self.quality_timeout,
            probe_targets.len(),
        )?;
        Ok(AgentConfig {
            url,
            device,
            interval: seconds("--interval / HEARTBEAT_INTERVAL", &self.interval, 60)?,
            // Bounded so that no wait the agent computes from it can overflow, and because a
            // heartbeat rarer than daily cannot show an outage in any useful time.
            key: self
                .key
                .filter(|key| !key.trim().is_empty())
                .map(|key| key.trim().to_owned()),
            note: self.note,
            timeout: seconds("--timeout / HEARTBEAT_TIMEOUT", &self.timeout, 10)?,
            state_dir: match self.state_dir.filter(|dir| !dir.as_os_str().is_empty()) {
                Some(dir) => dir,
                None => default_state_dir()?,
            },
            probe_targets,
            gateway,
            probe_interval: seconds(
                "--probe-interval / HEARTBEAT_PROBE_INTERVAL",
                &self.probe_interval,
                5,
            )?,
            quality,
            mode: if self.daemon && !self.once {
                Mode::Daemon
            } else {
                Mode::Once
            },
            verbose: self.verbose,
        })
    }
}

/// The longest interval (and probe interval, and timeout) accepted: a day.
pub const MAX_SECONDS: u64 = 86_400;

/// A whole number of seconds, from 1 to a day. An empty value (an empty line in `.env`, which
/// systemd's `EnvironmentFile` passes on as an empty variable) means the default.
fn seconds(option: &str, value: &str, default: u64) -> Result<Duration, String> {
    if value.trim().is_empty() {
        return Ok(Duration::from_secs(default));
    }
    match value.trim().parse::<u64>() {
        Ok(n) if n > MAX_SECONDS => Err(format!(
            "{option} is {value:?}; it must be at most {MAX_SECONDS} seconds (a day)"
        )),
        Ok(n) if n >= 1 => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "{option} is {value:?}; it must be a whole number of seconds, at least 1"
        )),
    }
}

/// The quality options: the switch, the count per target (with the total bounded by what one
/// heartbeat may report) and the timeout.
fn quality_config(
    switch: &str,
    count: &str,
    timeout: &str,
    targets: usize,
) -> Result<QualityConfig, String> {
    let enabled = match switch.trim().to_ascii_lowercase().as_str() {
        "" | "on" | "true" | "yes" | "1" => true,
        "off" | "false" | "no" | "0" => false,
        _ => {
            return Err(format!(
                "--quality / HEARTBEAT_QUALITY is {switch:?}; it must be on or off"
            ));
        }
    };
    let count = match count.trim() {
        "" => 3,
        text => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_QUALITY_COUNT).contains(&n) => n,
            _ => {
                return Err(format!(
                    "--quality-count / HEARTBEAT_QUALITY_COUNT is {count:?}; it must be a whole number from 1 to {MAX_QUALITY_COUNT}"
                ));
            }
        },
    };
    let limit = crate::heartbeat::MAX_QUALITY_PROBES as usize;
    if enabled && count as usize * targets > limit {
        return Err(format!(
            "--quality-count / HEARTBEAT_QUALITY_COUNT is {count} for {targets} probe targets: {} attempts; a heartbeat reports at most {limit}",
            count as usize * targets
        ));
    }
    let timeout = seconds("--quality-timeout / HEARTBEAT_QUALITY_TIMEOUT", timeout, 3)?;
    if timeout.as_secs() > MAX_QUALITY_TIMEOUT_S {
        return Err(format!(
            "--quality-timeout / HEARTBEAT_QUALITY_TIMEOUT is {}; it must be at most {MAX_QUALITY_TIMEOUT_S} seconds",
            timeout.as_secs()
        ));
    }
    Ok(QualityConfig {
        enabled,
        count,
        timeout,
    })
}

fn parse_target(text: &str) -> Result<ProbeTarget, String> {
    let bad = || format!("{text:?} is not host:port (e.g. 1.1.1.1:443 or [2606:4700::1111]:443)");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok(ProbeTarget {
        host: host.to_owned(),
        port,
    })
}

/// The state directory when none is given: `$XDG_STATE_HOME/isp-monitor`, else
/// `~/.local/state/isp-monitor`.
pub fn default_state_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("isp-monitor"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/state/isp-monitor")),
        None => Err(
            "no state directory: set --state-dir / HEARTBEAT_STATE_DIR (HOME is not set)"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<AgentConfig, String> {
        // Validation only: nothing is contacted, so the default probe targets are harmless here.
        let mut argv = vec!["heartbeat-agent", "--state-dir", "/tmp/x"];
        argv.extend_from_slice(args);
        Options::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .validate()
    }

    /// Bad values name the option to fix.
    #[test]
    fn bad_values_name_the_option() {
        assert_eq!(
            parse(&["--url", "ftp://x/"]).unwrap_err(),
            "--url / HEARTBEAT_URL must be an http:// or https:// URL"
        );
        assert_eq!(
            parse(&["--url", "http://x/api/ping", "--interval", "0"]).unwrap_err(),
            "--interval / HEARTBEAT_INTERVAL is \"0\"; it must be a whole number of seconds, at least 1"
        );
        assert!(
            parse(&["--url", "http://x/api/ping", "--interval", "-5"])
                .unwrap_err()
                .contains("at least 1")
        );
        let err = parse(&["--url", "http://x/api/ping", "--probe-targets", "nope"]).unwrap_err();
        assert!(err.contains("is not host:port"), "{err}");
        assert_eq!(
            parse(&["--url", "http://x/api/ping", "--interval", "86401"]).unwrap_err(),
            "--interval / HEARTBEAT_INTERVAL is \"86401\"; it must be at most 86400 seconds (a day)"
        );
        assert!(parse(&["--url", "http://x/api/ping", "--interval", "86400"]).is_ok());
    }

    /// A URL without a path gets the hint a 404 would give, without its credentials or key.
    #[test]
    fn url_without_path_gets_the_hint() {
        for url in ["http://me:secret@host:7071", "http://host:7071/?code=KEY"] {
            assert_eq!(
                parse(&["--url", url]).unwrap_err(),
                "--url / HEARTBEAT_URL has no path: it should end in /api/ping, e.g. http://host:7071/api/ping"
            );
        }
        let config = parse(&["--url", "https://me:secret@f.example/api/ping?code=KEY"]).unwrap();
        assert_eq!(config.display_url(), "https://f.example/api/ping");
    }

    /// Empty values, as an `.env` line without a value gives, mean the defaults.
    #[test]
    fn empty_values_mean_defaults() {
        let config = parse(&[
            "--url",
            "http://x/api/ping",
            "--interval",
            "",
            "--timeout",
            " ",
            "--probe-interval",
            "",
        ])
        .unwrap();
        assert_eq!(config.interval, Duration::from_secs(60));
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.probe_interval, Duration::from_secs(5));
    }

    /// The original agent's invocation still parses, and IPv6 targets are understood.
    #[test]
    fn original_flags_and_targets() {
        let config = parse(&[
            "--url",
            "https://f.example/api/ping?code=k",
            "--device",
            "dl-home",
            "--once",
            "--verbose",
        ])
        .unwrap();
        assert_eq!(config.mode, Mode::Once);
        assert_eq!(config.display_url(), "https://f.example/api/ping");
        assert_eq!(
            parse_target("[::1]:53").unwrap(),
            ProbeTarget {
                host: "::1".into(),
                port: 53
            }
        );
    }

    /// The quality options: defaults, the off switch, and bad values naming the option.
    #[test]
    fn quality_options() {
        let url = [
            "--url",
            "http://x/api/ping",
            "--probe-targets",
            "127.0.0.1:9,127.0.0.1:10",
        ];
        let with = |extra: &[&str]| parse(&[&url[..], extra].concat());
        let quality = with(&[]).unwrap().quality;
        assert_eq!(
            quality,
            QualityConfig {
                enabled: true,
                count: 3,
                timeout: Duration::from_secs(3)
            }
        );
        assert!(!with(&["--quality", "OFF"]).unwrap().quality.enabled);
        assert!(with(&["--quality", ""]).unwrap().quality.enabled);
        assert_eq!(
            with(&["--quality", "sometimes"]).unwrap_err(),
            "--quality / HEARTBEAT_QUALITY is \"sometimes\"; it must be on or off"
        );
        assert_eq!(
            with(&["--quality-count", "0"]).unwrap_err(),
            "--quality-count / HEARTBEAT_QUALITY_COUNT is \"0\"; it must be a whole number from 1 to 20"
        );
        assert_eq!(with(&["--quality-count", "20"]).unwrap().quality.count, 20);
        let many: Vec<String> = (1..=6).map(|p| format!("127.0.0.1:{p}")).collect();
        assert_eq!(
            parse(&[
                "--url",
                "http://x/api/ping",
                "--probe-targets",
                &many.join(","),
                "--quality-count",
                "20"
            ])
            .unwrap_err(),
            "--quality-count / HEARTBEAT_QUALITY_COUNT is 20 for 6 probe targets: 120 attempts; a heartbeat reports at most 100"
        );
        assert_eq!(
            with(&["--quality-timeout", "61"]).unwrap_err(),
            "--quality-timeout / HEARTBEAT_QUALITY_TIMEOUT is 61; it must be at most 60 seconds"
        );
        assert!(
            with(&["--quality-timeout", "0"])
                .unwrap_err()
                .starts_with("--quality-timeout / HEARTBEAT_QUALITY_TIMEOUT is \"0\"")
        );
    }
}
