//! Store paths: absolute (`/local/domain/3/device/vbd/0/state`) or
//! relative to the caller's home `/local/domain/<id>`; watch paths may also
//! be the special `@releaseDomain` / `@introduceDomain`.

use super::Limits;
use crate::DomId;
use alloc::format;
use alloc::string::String;
use hypercall_abi::io::xs_wire::XsError;

/// The home directory of domain `dom`: `/local/domain/<dom>`.
pub fn domain_path(dom: DomId) -> String {
    format!("/local/domain/{dom}")
}

fn valid_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'@' | b'.' | b':')
}

/// Resolves `p` for `dom` into a canonical absolute path: characters
/// `[A-Za-z0-9-/_@.:]`, no empty component (no `//`), no trailing `/`
/// except the root. Refuses (`EINVAL`) anything else, and paths longer
/// than the limits.
pub fn canonical(dom: DomId, p: &str, limits: &Limits) -> Result<String, XsError> {
    if p.is_empty() || !p.bytes().all(valid_char) {
        return Err(XsError::EINVAL);
    }
    let abs = if p.starts_with('/') {
        String::from(p)
    } else {
        if p.len() > limits.rel_path_max {
            return Err(XsError::EINVAL);
        }
        format!("{}/{}", domain_path(dom), p)
    };
    if abs.len() > limits.abs_path_max {
        return Err(XsError::EINVAL);
    }
    if abs == "/" {
        return Ok(abs);
    }
    if abs.ends_with('/') || abs.contains("//") {
        return Err(XsError::EINVAL);
    }
    Ok(abs)
}

/// A watch path: a special `@name` or a canonical path.
pub fn watch_path(dom: DomId, p: &str, limits: &Limits) -> Result<String, XsError> {
    if let Some(name) = p.strip_prefix('@') {
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(XsError::EINVAL);
        }
        return Ok(String::from(p));
    }
    canonical(dom, p, limits)
}

/// The parent of a canonical path (`None` for the root).
pub fn parent(p: &str) -> Option<&str> {
    if p == "/" {
        return None;
    }
    match p.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&p[..i]),
        None => None,
    }
}

/// Whether `p` is `base` or below it (component-wise).
pub fn is_under(p: &str, base: &str) -> bool {
    base == "/"
        || p == base
        || p.len() > base.len() && p.starts_with(base) && p.as_bytes()[base.len()] == b'/'
}

/// `p` as `dom` should see it in a watch event: relative to its home if
/// it registered the watch with a relative path.
pub fn for_watcher(p: &str, dom: DomId, relative: bool) -> String {
    if relative {
        let home = domain_path(dom);
        if let Some(rest) = p
            .strip_prefix(home.as_str())
            .and_then(|r| r.strip_prefix('/'))
        {
            return String::from(rest);
        }
    }
    String::from(p)
}
