//! A node's `tls` and `user_identity` settings: the raw JSON sections, their
//! checks, and the resolved settings the association layer uses.
//!
//! Secrets are never in the config: `user_identity` names an environment variable
//! or a file, read when an association is opened. Nothing here holds a secret.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::ConfigError;

/// `nodes.X.tls`, as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object (TLS settings)")]
pub(crate) struct RawTls {
    pub enabled: Option<bool>,
    pub server_name: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub min_version: Option<String>,
    pub verify_peer: Option<bool>,
}

/// `nodes.X.user_identity`, as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object (user identity)")]
pub(crate) struct RawUserIdentity {
    #[serde(rename = "type")]
    pub kind: RawIdentityKind,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub positive_response_requested: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawIdentityKind {
    Username,
    UsernamePassword,
    Jwt,
    Saml,
    Kerberos,
}

/// The lowest TLS version offered. TLS 1.0 and 1.1 are never offered (RFC 8996).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 are offered.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl TlsVersion {
    /// As written in the config: `"1.2"`, `"1.3"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }
}

/// DICOM TLS to one node (PS3.15 B.1 / BCP 195).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The name the server's certificate must carry (DNS name or IP address);
    /// `None`: the node's `host`.
    pub server_name: Option<String>,
    /// PEM CA bundle to trust; `None`: the system's trust roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM), for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// The lowest TLS version accepted.
    pub min_version: TlsVersion,
    /// `false` only when written out: the server's certificate is not checked at all.
    pub verify_peer: bool,
}

impl TlsSettings {
    /// TLS 1.2+, system roots, verified, no client certificate.
    pub fn system_roots() -> TlsSettings {
        TlsSettings {
            server_name: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            min_version: TlsVersion::Tls12,
            verify_peer: true,
        }
    }

    /// Relative paths made relative to `dir` (the config file's folder).
    pub fn rebase(&mut self, dir: &Path) {
        for path in [&mut self.ca_file, &mut self.cert_file, &mut self.key_file]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
    }
}

/// Which user identity (PS3.7 D.3.3.7) is sent in the A-ASSOCIATE-RQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    /// Type 1: username.
    Username,
    /// Type 2: username and passcode.
    UsernamePassword,
    /// Type 3: Kerberos service ticket.
    Kerberos,
    /// Type 4: SAML assertion.
    Saml,
    /// Type 5: JSON Web Token.
    Jwt,
}

impl IdentityKind {
    /// As written in the config's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Username => "username",
            IdentityKind::UsernamePassword => "username_password",
            IdentityKind::Kerberos => "kerberos",
            IdentityKind::Saml => "saml",
            IdentityKind::Jwt => "jwt",
        }
    }
}

/// Where a secret (passcode, token, ticket) is read from. The secret itself is
/// never held in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable, by name.
    Env(String),
    /// A file (its whole content; one trailing newline is dropped for a passcode).
    File(PathBuf),
}

impl SecretSource {
    /// Where it comes from, for `config check` and errors: never the secret.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(var) => format!("environment variable {var}"),
            SecretSource::File(path) => format!("file {}", path.display()),
        }
    }
}

/// User identity negotiation for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentitySettings {
    /// The identity type (PS3.7 D.3.3.7.1).
    pub kind: IdentityKind,
    /// The username (types 1 and 2).
    pub username: Option<String>,
    /// The passcode (type 2) or the token, assertion or ticket (types 3-5).
    pub secret: Option<SecretSource>,
    /// Ask the acceptor to confirm the identity (and fail when it does not).
    pub positive_response_requested: bool,
}

impl UserIdentitySettings {
    /// A relative secret file made relative to `dir` (the config file's folder).
    pub fn rebase(&mut self, dir: &Path) {
        if let Some(SecretSource::File(path)) = &mut self.secret {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
    }
}

pub(crate) fn resolve_tls(base: &str, raw: &RawTls) -> Result<Option<TlsSettings>, ConfigError> {
    let path = format!("{base}.tls");
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let min_version = match raw.min_version.as_deref().map(str::trim) {
        None | Some("1.2") => TlsVersion::Tls12,
        Some("1.3") => TlsVersion::Tls13,
        Some(other) => {
            return Err(ConfigError::invalid(
                format!("{path}.min_version"),
                format!("{other:?} is not offered; use \"1.2\" or \"1.3\" (TLS 1.0 and 1.1 are deprecated, RFC 8996)"),
            ))
        }
    };
    if raw.cert_file.is_some() != raw.key_file.is_some() {
        let missing = if raw.cert_file.is_some() {
            "key_file"
        } else {
            "cert_file"
        };
        return Err(ConfigError::invalid(
            format!("{path}.{missing}"),
            "a client certificate needs both cert_file and key_file",
        ));
    }
    if let Some(name) = &raw.server_name {
        if rustls_pki_types::ServerName::try_from(name.as_str()).is_err() {
            return Err(ConfigError::invalid(
                format!("{path}.server_name"),
                format!("{name:?} is neither a DNS name nor an IP address"),
            ));
        }
    }
    for (field, value) in [
        ("ca_file", &raw.ca_file),
        ("cert_file", &raw.cert_file),
        ("key_file", &raw.key_file),
    ] {
        if value.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(ConfigError::invalid(format!("{path}.{field}"), "empty path"));
        }
    }
    Ok(Some(TlsSettings {
        server_name: raw.server_name.clone(),
        ca_file: raw.ca_file.clone(),
        cert_file: raw.cert_file.clone(),
        key_file: raw.key_file.clone(),
        min_version,
        verify_peer: raw.verify_peer.unwrap_or(true),
    }))
}

pub(crate) fn resolve_user_identity(base: &str, raw: &RawUserIdentity) -> Result<UserIdentitySettings, ConfigError> {
    let path = format!("{base}.user_identity");
    let kind = match raw.kind {
        RawIdentityKind::Username => IdentityKind::Username,
        RawIdentityKind::UsernamePassword => IdentityKind::UsernamePassword,
        RawIdentityKind::Jwt => IdentityKind::Jwt,
        RawIdentityKind::Saml => IdentityKind::Saml,
        RawIdentityKind::Kerberos => IdentityKind::Kerberos,
    };
    let needs_username = matches!(kind, IdentityKind::Username | IdentityKind::UsernamePassword);
    match &raw.username {
        Some(u) if u.is_empty() => {
            return Err(ConfigError::invalid(format!("{path}.username"), "empty username"));
        }
        None if needs_username => {
            return Err(ConfigError::invalid(
                format!("{path}.username"),
                format!("type {:?} needs a username", kind.as_str()),
            ));
        }
        Some(_) if !needs_username => {
            return Err(ConfigError::invalid(
                format!("{path}.username"),
                format!("type {:?} carries no username (the token says who)", kind.as_str()),
            ));
        }
        _ => {}
    }
    let sources: Vec<(&str, SecretSource)> = [
        raw.password_env.clone().map(|v| ("password_env", SecretSource::Env(v))),
        raw.password_file
            .clone()
            .map(|p| ("password_file", SecretSource::File(p))),
        raw.token_file.clone().map(|p| ("token_file", SecretSource::File(p))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if sources.len() > 1 {
        return Err(ConfigError::invalid(
            format!("{path}.{}", sources[1].0),
            format!("give one secret source, not both {} and {}", sources[0].0, sources[1].0),
        ));
    }
    let source = sources.into_iter().next();
    let secret = match (kind, source) {
        (IdentityKind::Username, None) => None,
        (IdentityKind::Username, Some((field, _))) => {
            return Err(ConfigError::invalid(
                format!("{path}.{field}"),
                "type \"username\" sends no secret; use \"username_password\"",
            ))
        }
        (IdentityKind::UsernamePassword, Some((field @ ("password_env" | "password_file"), s))) => {
            let _ = field;
            Some(s)
        }
        (IdentityKind::UsernamePassword, _) => {
            return Err(ConfigError::invalid(
                format!("{path}.password_env"),
                "type \"username_password\" needs password_env or password_file",
            ))
        }
        (_, Some(("token_file", s))) => Some(s),
        (k, _) => {
            return Err(ConfigError::invalid(
                format!("{path}.token_file"),
                format!("type {:?} needs token_file", k.as_str()),
            ))
        }
    };
    if let Some(SecretSource::Env(var)) = &secret {
        if var.is_empty() || var.contains('=') {
            return Err(ConfigError::invalid(
                format!("{path}.password_env"),
                format!("{var:?} is not an environment variable name"),
            ));
        }
    }
    Ok(UserIdentitySettings {
        kind,
        username: raw.username.clone(),
        secret,
        positive_response_requested: raw.positive_response_requested.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, IdentityKind, SecretSource, TlsVersion};

    fn node(extra: &str) -> String {
        format!(r#"{{"nodes": {{"N": {{"ae_title": "A", "host": "pacs.example.org", "port": 104, {extra}}}}}}}"#)
    }

    fn error(extra: &str) -> String {
        Config::from_json_str(&node(extra)).unwrap_err().to_string()
    }

    #[test]
    fn tls_settings_are_read_and_checked() {
        let c = Config::from_json_str(&node(
            r#""tls": {"enabled": true, "min_version": "1.3", "ca_file": "ca.pem"}"#,
        ))
        .unwrap();
        let tls = c.node("N").unwrap().tls.clone().unwrap();
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert!(tls.verify_peer, "verify_peer defaults to true");
        assert!(Config::from_json_str(&node(r#""tls": {"enabled": false}"#))
            .unwrap()
            .node("N")
            .unwrap()
            .tls
            .is_none());
        let e = error(r#""tls": {"min_version": "1.1"}"#);
        assert!(e.contains("nodes.N.tls.min_version") && e.contains("RFC 8996"), "{e}");
        let e = error(r#""tls": {"cert_file": "c.pem"}"#);
        assert!(e.contains("nodes.N.tls.key_file"), "{e}");
        let e = error(r#""tls": {"server_name": "not a name!"}"#);
        assert!(e.contains("nodes.N.tls.server_name"), "{e}");
        let e = error(r#""tls": {"verify": false}"#);
        assert!(e.contains("nodes.N.tls.verify"), "{e}");
    }

    #[test]
    fn user_identity_settings_are_read_and_checked() {
        let c = Config::from_json_str(&node(
            r#""user_identity": {"type": "username_password", "username": "u", "password_env": "PW"}"#,
        ))
        .unwrap();
        let id = c.node("N").unwrap().user_identity.clone().unwrap();
        assert_eq!(id.kind, IdentityKind::UsernamePassword);
        assert_eq!(id.secret, Some(SecretSource::Env("PW".into())));
        assert!(!id.positive_response_requested);
        let e = error(r#""user_identity": {"type": "username_password", "username": "u"}"#);
        assert!(e.contains("password_env"), "{e}");
        let e = error(r#""user_identity": {"type": "jwt", "password_env": "X", "token_file": "t"}"#);
        assert!(e.contains("one secret source"), "{e}");
        let e = error(r#""user_identity": {"type": "jwt"}"#);
        assert!(e.contains("token_file"), "{e}");
        let e = error(r#""user_identity": {"type": "username"}"#);
        assert!(e.contains("nodes.N.user_identity.username"), "{e}");
        let e = error(r#""user_identity": {"type": "password"}"#);
        assert!(e.contains("nodes.N.user_identity.type"), "{e}");
    }
}
