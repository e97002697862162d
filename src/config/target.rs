//! Ad-hoc targets (`AET@HOST:PORT`) and the host-name check shared with the config.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use super::ae::normalize_ae_title;
use super::error::ConfigError;

/// A peer given on the command line as `AET@HOST:PORT` instead of a node name.
///
/// `host` is an IPv4 address, a host name, or an IPv6 address (written in
/// brackets, `ORTHANC@[::1]:4242`, and stored without them so that it can be
/// passed to `(host, port)` socket address resolution as is). `ae_title` is
/// validated and stored without leading or trailing spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdHocTarget {
    /// The called AE title.
    pub ae_title: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for AdHocTarget {
    /// `AET@HOST:PORT`, IPv6 hosts in brackets: the form `from_str` accepts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.ae_title, host_port(&self.host, self.port))
    }
}

/// `HOST:PORT`, with an IPv6 host in brackets (`[::1]:4242`): what socket address
/// parsing and people expect. The one place this is spelled out.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl FromStr for AdHocTarget {
    type Err = ConfigError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| ConfigError::Target {
            input: input.to_string(),
            reason,
        };
        // An AE title may itself contain `@` (it is in the default repertoire);
        // a host never does, so the last `@` is the separator.
        let (ae, host_port) = input
            .rsplit_once('@')
            .ok_or_else(|| fail("no '@' between the AE title and the host".to_string()))?;
        let ae_title = normalize_ae_title(ae).map_err(|reason| fail(format!("invalid AE title {ae:?}: {reason}")))?;
        let (host, port) = split_host_port(host_port).map_err(fail)?;
        let port = parse_port(port).map_err(fail)?;
        Ok(AdHocTarget { ae_title, host, port })
    }
}

/// Splits `HOST:PORT` or `[IPV6]:PORT`; the host is checked and returned without brackets.
fn split_host_port(text: &str) -> Result<(String, &str), String> {
    if let Some(bracketed) = text.strip_prefix('[') {
        let (inner, rest) = bracketed
            .split_once(']')
            .ok_or_else(|| "'[' without a closing ']' around the IPv6 address".to_string())?;
        let port = rest
            .strip_prefix(':')
            .ok_or_else(|| "no ':PORT' after the host".to_string())?;
        let host = check_host(&format!("[{inner}]"))?;
        return Ok((host, port));
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| "no ':PORT' after the host".to_string())?;
    if host.contains(':') {
        return Err(format!(
            "host {host:?} looks like an IPv6 address; write it in brackets: AET@[{host}]:PORT"
        ));
    }
    Ok((check_host(host)?, port))
}

/// A TCP port, 1 to 65535, digits only.
fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() {
        return Err("the port is missing after ':'".to_string());
    }
    match text.parse::<u16>() {
        Ok(port) if port != 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(format!("port {text:?} is not a number from 1 to 65535")),
    }
}

/// Checks a host: an IPv4 address or host name (letters, digits, `-`, `.`, `_`),
/// or an IPv6 address, bare or in brackets. Returns it without brackets.
pub(crate) fn check_host(host: &str) -> Result<String, String> {
    if host.trim().is_empty() {
        return Err("the host is empty".to_string());
    }
    let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if unbracketed.contains(':') {
        return match unbracketed.parse::<Ipv6Addr>() {
            Ok(_) => Ok(unbracketed.to_string()),
            Err(_) => Err(format!("host {host:?} is not a valid IPv6 address")),
        };
    }
    let valid_name = unbracketed.len() == host.len()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if valid_name {
        Ok(host.to_string())
    } else {
        Err(format!(
            "host {host:?} is not a host name or an IP address \
             (letters, digits, '-', '.' and '_' only; IPv6 in brackets)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn ipv6_hosts_get_brackets_once() {
        assert_eq!(host_port("::1", 104), "[::1]:104");
        assert_eq!(host_port("[::1]", 104), "[::1]:104");
        assert_eq!(host_port("127.0.0.1", 104), "127.0.0.1:104");
        assert_eq!(host_port("pacs.example.org", 104), "pacs.example.org:104");
        let addr: std::net::SocketAddr = host_port("::1", 11112).parse().unwrap();
        assert!(addr.is_ipv6());
    }
}
