//! The boot configuration: which domains the monitor starts, read from its
//! command line (`/chosen/bootargs`, QEMU's `-append`).
//!
//! Syntax: space-separated options; a value may be double-quoted to hold
//! spaces.
//!
//! - `dom=NAME[,mem=MIB][,kernel=elf|image][,vcpus=N][,weight=N][,cap=N][,priv][,dev=LIST][,args=TEXT]`:
//!   one domain; may be repeated (at most [`MAX_DOMAINS`]). `mem` defaults to
//!   16 MiB, `kernel` to `elf`, `vcpus` to 1 (at most [`MAX_VCPUS`]),
//!   `weight` to 256 (1..=65535), `cap` to 0 = none (percent of one CPU, at
//!   most `100 * vcpus`); `priv` makes it the privileged domain (at most one;
//!   without any, the first domain is privileged); `driver` makes it the
//!   driver domain, which gets the machine's devices (at most one); `pin=N`
//!   keeps its vCPUs on physical CPU N; `dev` is
//!   a `+`-separated
//!   list of devices from `console`, `blk`, `net` (default `console`);
//!   `args` becomes the domain's `/chosen/bootargs` and must come last (it
//!   may contain commas).
//! - `tick_ms=N`: the scheduler's time slice (default 10).
//! - `maxcpus=N`: use at most N physical CPUs (default: every CPU the
//!   device tree lists); the others stay parked.
//! - `semihosting`: report the final status through semihosting so that QEMU
//!   exits with it (test runs only: it lets guests stop QEMU too).
//! - `bench-floor`: benchmark only: until the first timer tick, answer every
//!   synchronous exception from a guest with a bare `eret` (the cost floor of a
//!   hypercall round trip on this machine).
//!
//! Without any `dom=`, the default configuration ([`DEFAULT_DOMAINS`]) runs.

use core::fmt;
use heapless::{String, Vec};

/// Most domains the configuration may name.
pub const MAX_DOMAINS: usize = 8;
/// Longest domain name.
pub const MAX_NAME: usize = 15;
/// Longest guest command line.
pub const MAX_ARGS: usize = 255;
/// Largest domain memory, MiB.
pub const MAX_MEM_MIB: u32 = 1024;
/// Smallest domain memory, MiB (room for kernel and device tree).
pub const MIN_MEM_MIB: u32 = 4;
/// Most vCPUs of one domain.
pub const MAX_VCPUS: u16 = 8;

/// The configuration used when the command line names no domain.
pub const DEFAULT_DOMAINS: &str =
    r#"dom=hello,mem=16,kernel=elf,args="hello" dom=world,mem=16,kernel=image,args="hello""#;

/// Format of a kernel image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelFormat {
    /// An ELF executable, loaded at its program headers' addresses.
    Elf,
    /// An arm64 Linux `Image`, placed by its header (as Xen on Arm does).
    Image,
}

/// One domain to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// Name used in reports and console labels.
    pub name: String<MAX_NAME>,
    /// Memory, MiB.
    pub mem_mib: u32,
    /// Which embedded kernel image to load.
    pub kernel: KernelFormat,
    /// The guest's command line.
    pub args: String<MAX_ARGS>,
    /// Number of vCPUs, `1..=MAX_VCPUS`.
    pub vcpus: u16,
    /// Scheduler weight, `1..=65535`.
    pub weight: u16,
    /// Scheduler cap, percent of one CPU (0 = none), `<= 100 * vcpus`.
    pub cap: u16,
    /// Marked `priv`: the privileged domain.
    pub privileged: bool,
    /// Marked `driver`: the driver domain, given the machine's devices.
    pub driver: bool,
    /// Devices it is given.
    pub devices: Devices,
    /// `pin=N`: its vCPUs run only on physical CPU N (if the machine has
    /// it; otherwise the monitor says so and ignores it).
    pub pin: Option<u16>,
}

/// A set of paravirtual devices (`dev=console+blk`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Devices(pub u8);

impl Devices {
    /// The console.
    pub const CONSOLE: Devices = Devices(1 << 0);
    /// A block device.
    pub const BLK: Devices = Devices(1 << 1);
    /// A network device.
    pub const NET: Devices = Devices(1 << 2);

    /// Whether every device of `other` is in the set.
    pub fn contains(self, other: Devices) -> bool {
        self.0 & other.0 == other.0
    }

    fn parse(v: &str) -> Option<Devices> {
        let mut d = Devices(0);
        for name in v.split('+') {
            d.0 |= match name {
                "console" => Self::CONSOLE.0,
                "blk" => Self::BLK.0,
                "net" => Self::NET.0,
                _ => return None,
            };
        }
        Some(d)
    }
}

/// The monitor's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Domains, in start order.
    pub domains: Vec<DomainConfig, MAX_DOMAINS>,
    /// Timer tick period, milliseconds.
    pub tick_ms: u32,
    /// Most physical CPUs to use (`maxcpus=`), `None` for all.
    pub max_cpus: Option<u32>,
    /// Exit through semihosting with the final status.
    pub semihosting: bool,
    /// Bare-`eret` vectors until the first tick (benchmarks only).
    pub bench_floor: bool,
}

/// What is wrong with a command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// An option the monitor does not know.
    UnknownOption(String<32>),
    /// A value that does not parse or is out of range.
    BadValue(&'static str, String<32>),
    /// More than `MAX_DOMAINS` domains.
    TooManyDomains,
    /// A name or argument string over its limit.
    TooLong(&'static str),
    /// A double quote that is never closed.
    UnterminatedQuote,
    /// Two domains with one name.
    DuplicateName(String<MAX_NAME>),
    /// More than one domain marked `priv`.
    TwoPrivileged,
    /// More than one domain marked `driver`.
    TwoDrivers,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOption(o) => write!(f, "unknown option '{o}'"),
            Self::BadValue(what, v) => write!(f, "bad value '{v}' for {what}"),
            Self::TooManyDomains => write!(f, "more than {MAX_DOMAINS} domains"),
            Self::TooLong(what) => write!(f, "{what} too long"),
            Self::UnterminatedQuote => write!(f, "unterminated double quote"),
            Self::DuplicateName(n) => write!(f, "two domains named '{n}'"),
            Self::TwoPrivileged => write!(f, "more than one domain marked priv"),
            Self::TwoDrivers => write!(f, "more than one domain marked driver"),
        }
    }
}

fn short(s: &str) -> String<32> {
    let mut o = String::new();
    for c in s.chars() {
        if o.push(c).is_err() {
            break;
        }
    }
    o
}

/// Splits a command line into tokens at unquoted spaces; quotes are removed.
fn tokens(line: &str) -> Result<Vec<String<{ MAX_ARGS + 64 }>, 32>, ConfigError> {
    let mut out = Vec::new();
    let mut cur: String<{ MAX_ARGS + 64 }> = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(core::mem::take(&mut cur))
                        .map_err(|_| ConfigError::TooLong("command line"))?;
                    any = false;
                }
            }
            c => {
                cur.push(c).map_err(|_| ConfigError::TooLong("option"))?;
                any = true;
            }
        }
    }
    if quoted {
        return Err(ConfigError::UnterminatedQuote);
    }
    if any {
        out.push(cur)
            .map_err(|_| ConfigError::TooLong("command line"))?;
    }
    Ok(out)
}

fn parse_domain(spec: &str) -> Result<DomainConfig, ConfigError> {
    let (head, args) = match spec.find(",args=") {
        Some(i) => (&spec[..i], Some(&spec[i + 6..])),
        None => (spec, None),
    };
    let mut parts = head.split(',');
    let name = parts.next().unwrap_or("");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ConfigError::BadValue("domain name", short(name)));
    }
    let mut d = DomainConfig {
        name: String::try_from(name).map_err(|_| ConfigError::TooLong("domain name"))?,
        mem_mib: 16,
        kernel: KernelFormat::Elf,
        args: String::new(),
        vcpus: 1,
        weight: crate::sched::DEFAULT_WEIGHT,
        cap: 0,
        privileged: false,
        driver: false,
        pin: None,
        devices: Devices::CONSOLE,
    };
    let mut cap_text = "";
    for p in parts {
        if p == "priv" {
            d.privileged = true;
            continue;
        }
        if p == "driver" {
            d.driver = true;
            continue;
        }
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| ConfigError::UnknownOption(short(p)))?;
        match k {
            "mem" => {
                d.mem_mib = v
                    .parse()
                    .ok()
                    .filter(|m| (MIN_MEM_MIB..=MAX_MEM_MIB).contains(m))
                    .ok_or_else(|| ConfigError::BadValue("mem (MiB, 4..=1024)", short(v)))?
            }
            "kernel" => {
                d.kernel = match v {
                    "elf" => KernelFormat::Elf,
                    "image" => KernelFormat::Image,
                    _ => return Err(ConfigError::BadValue("kernel (elf|image)", short(v))),
                }
            }
            "vcpus" => {
                d.vcpus = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_VCPUS).contains(n))
                    .ok_or_else(|| ConfigError::BadValue("vcpus (1..=8)", short(v)))?
            }
            "weight" => {
                d.weight = v
                    .parse()
                    .ok()
                    .filter(|&w| w >= 1)
                    .ok_or_else(|| ConfigError::BadValue("weight (1..=65535)", short(v)))?
            }
            "cap" => {
                d.cap = v.parse().map_err(|_| {
                    ConfigError::BadValue("cap (percent, <= 100 * vcpus)", short(v))
                })?;
                cap_text = v;
            }
            "pin" => {
                d.pin = Some(
                    v.parse()
                        .ok()
                        .filter(|n: &u16| (*n as usize) < 64)
                        .ok_or_else(|| {
                            ConfigError::BadValue("pin (a CPU number, 0..64)", short(v))
                        })?,
                )
            }
            "dev" => {
                d.devices = Devices::parse(v)
                    .ok_or_else(|| ConfigError::BadValue("dev (console+blk+net)", short(v)))?
            }
            _ => return Err(ConfigError::UnknownOption(short(k))),
        }
    }
    if u32::from(d.cap) > 100 * u32::from(d.vcpus) {
        return Err(ConfigError::BadValue(
            "cap (percent, <= 100 * vcpus)",
            short(cap_text),
        ));
    }
    if let Some(a) = args {
        d.args = String::try_from(a).map_err(|_| ConfigError::TooLong("domain args"))?;
    }
    Ok(d)
}

impl Config {
    /// Index in [`Config::domains`] of the privileged domain: the one
    /// marked `priv`, else the first.
    pub fn privileged(&self) -> usize {
        self.domains.iter().position(|d| d.privileged).unwrap_or(0)
    }
}

/// Parses the monitor's command line.
pub fn parse(line: &str) -> Result<Config, ConfigError> {
    let mut cfg = Config {
        domains: Vec::new(),
        tick_ms: 10,
        max_cpus: None,
        semihosting: false,
        bench_floor: false,
    };
    for t in tokens(line)? {
        let (k, v) = t.split_once('=').unwrap_or((t.as_str(), ""));
        match k {
            "dom" => {
                let d = parse_domain(v)?;
                if cfg.domains.iter().any(|o| o.name == d.name) {
                    return Err(ConfigError::DuplicateName(d.name));
                }
                if d.privileged && cfg.domains.iter().any(|o| o.privileged) {
                    return Err(ConfigError::TwoPrivileged);
                }
                if d.driver && cfg.domains.iter().any(|o| o.driver) {
                    return Err(ConfigError::TwoDrivers);
                }
                cfg.domains
                    .push(d)
                    .map_err(|_| ConfigError::TooManyDomains)?;
            }
            "tick_ms" => {
                cfg.tick_ms = v
                    .parse()
                    .ok()
                    .filter(|t| (1..=1000).contains(t))
                    .ok_or_else(|| ConfigError::BadValue("tick_ms (1..=1000)", short(v)))?
            }
            "maxcpus" => {
                cfg.max_cpus = Some(
                    v.parse()
                        .ok()
                        .filter(|n| (1..=64).contains(n))
                        .ok_or_else(|| ConfigError::BadValue("maxcpus (1..=64)", short(v)))?,
                )
            }
            "semihosting" => cfg.semihosting = true,
            "bench-floor" => cfg.bench_floor = true,
            // Options that loaders add for Linux kernels are not ours to refuse.
            "console" | "earlycon" | "root" | "rw" | "ro" => {}
            _ => return Err(ConfigError::UnknownOption(short(k))),
        }
    }
    if cfg.domains.is_empty() {
        let defaults = parse(DEFAULT_DOMAINS)?;
        cfg.domains = defaults.domains;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_configuration() {
        let c = parse("").unwrap();
        assert_eq!(c.domains.len(), 2);
        assert_eq!(c.domains[0].name, "hello");
        assert_eq!(c.domains[1].kernel, KernelFormat::Image);
        assert_eq!(c.tick_ms, 10);
        assert!(!c.semihosting);
    }

    #[test]
    fn domains_with_quoted_args() {
        let c = parse(
            r#"semihosting tick_ms=5 dom=a,mem=32,args="test=enosys x,y" dom=b,kernel=image"#,
        )
        .unwrap();
        assert!(c.semihosting);
        assert_eq!(c.tick_ms, 5);
        assert_eq!(c.domains[0].mem_mib, 32);
        assert_eq!(c.domains[0].args, "test=enosys x,y");
        assert_eq!(c.domains[1].kernel, KernelFormat::Image);
        assert_eq!(c.domains[1].mem_mib, 16);
    }

    #[test]
    fn errors_are_specific() {
        assert!(matches!(
            parse("frobnicate"),
            Err(ConfigError::UnknownOption(_))
        ));
        assert!(matches!(
            parse("dom=a,mem=0"),
            Err(ConfigError::BadValue(..))
        ));
        assert!(matches!(
            parse("dom=a,mem=4096"),
            Err(ConfigError::BadValue(..))
        ));
        assert!(matches!(
            parse("dom=a,kernel=coff"),
            Err(ConfigError::BadValue(..))
        ));
        assert!(matches!(
            parse("dom=a,colour=red"),
            Err(ConfigError::UnknownOption(_))
        ));
        assert!(matches!(
            parse("dom=a dom=a"),
            Err(ConfigError::DuplicateName(_))
        ));
        assert!(matches!(
            parse("dom=,mem=4"),
            Err(ConfigError::BadValue(..))
        ));
        assert!(matches!(
            parse(r#"dom=a,args="open"#),
            Err(ConfigError::UnterminatedQuote)
        ));
        assert!(matches!(parse("tick_ms=0"), Err(ConfigError::BadValue(..))));
        assert!(matches!(parse("maxcpus=0"), Err(ConfigError::BadValue(..))));
        assert_eq!(parse("maxcpus=2").unwrap().max_cpus, Some(2));
        assert_eq!(parse("").unwrap().max_cpus, None);
        let many = "dom=a1 dom=a2 dom=a3 dom=a4 dom=a5 dom=a6 dom=a7 dom=a8 dom=a9";
        assert_eq!(parse(many), Err(ConfigError::TooManyDomains));
        let long = format!("dom=a,args={}", "x".repeat(300));
        assert!(matches!(parse(&long), Err(ConfigError::TooLong(_))));
    }

    #[test]
    fn vcpus_weight_cap_priv_and_devices() {
        let c = parse(r#"dom=a,vcpus=4,weight=512,cap=250,dev=console+blk dom=b,priv,kernel=image,args="x,priv""#)
            .unwrap();
        let a = &c.domains[0];
        assert_eq!(
            (a.vcpus, a.weight, a.cap, a.privileged),
            (4, 512, 250, false)
        );
        assert!(a.devices.contains(Devices::BLK) && a.devices.contains(Devices::CONSOLE));
        assert!(!a.devices.contains(Devices::NET));
        let b = &c.domains[1];
        assert_eq!((b.vcpus, b.weight, b.cap, b.privileged), (1, 256, 0, true));
        assert_eq!(b.devices, Devices::CONSOLE);
        assert_eq!(b.args, "x,priv");
        assert_eq!(c.privileged(), 1);
        // Without priv, the first domain is privileged.
        assert_eq!(parse("dom=a dom=b").unwrap().privileged(), 0);
        assert_eq!(parse("").unwrap().privileged(), 0);
        let c = parse(r#"dom=drv,driver,priv,args="driver" dom=g"#).unwrap();
        assert!(c.domains[0].driver && !c.domains[1].driver);
        assert_eq!(
            parse("dom=a,driver dom=b,driver").unwrap_err(),
            ConfigError::TwoDrivers
        );
        assert_eq!(parse("dom=a,pin=1").unwrap().domains[0].pin, Some(1));
        assert_eq!(parse("dom=a").unwrap().domains[0].pin, None);
        assert!(matches!(
            parse("dom=a,pin=64"),
            Err(ConfigError::BadValue(..))
        ));
        assert!(matches!(
            parse("dom=a,pin=x"),
            Err(ConfigError::BadValue(..))
        ));
        // Limits are inclusive.
        let c = parse("dom=a,vcpus=8,weight=65535,cap=800,dev=net").unwrap();
        assert_eq!(
            (c.domains[0].vcpus, c.domains[0].weight, c.domains[0].cap),
            (8, 65535, 800)
        );
    }

    #[test]
    fn out_of_range_scheduling_values_are_refused() {
        for bad in [
            "dom=a,vcpus=0",
            "dom=a,vcpus=9",
            "dom=a,vcpus=x",
            "dom=a,weight=0",
            "dom=a,weight=65536",
            "dom=a,cap=101",
            "dom=a,vcpus=2,cap=201",
            "dom=a,cap=-1",
            "dom=a,dev=floppy",
            "dom=a,dev=console+",
        ] {
            assert!(
                matches!(parse(bad), Err(ConfigError::BadValue(..))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse("dom=a,cap=70000"),
            Err(ConfigError::BadValue(..))
        ));
        assert_eq!(
            parse("dom=a,priv dom=b,priv"),
            Err(ConfigError::TwoPrivileged)
        );
        assert!(matches!(
            parse("dom=a,priv=1"),
            Err(ConfigError::UnknownOption(_))
        ));
    }
}
