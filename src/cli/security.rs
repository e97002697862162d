//! `--tls`, `--tls-ca`, `--tls-cert`, `--tls-key`, `--tls-server-name`, `--user`,
//! `--password-env`: TLS and user identity for an ad-hoc `AET@HOST:PORT` target
//! (a node of the config has its own `tls` and `user_identity`).

use std::path::PathBuf;

use clap::Args;

use crate::config::{IdentityKind, SecretSource, TlsSettings, UserIdentitySettings};

/// TLS and user identity options of the network commands.
#[derive(Debug, Args, Clone, Default)]
pub struct SecurityOpts {
    /// DICOM TLS to an AET@HOST:PORT target, trusting the system's roots.
    #[arg(long)]
    pub tls: bool,
    /// Trust this CA bundle (PEM) for the server's certificate; implies --tls.
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS; needs --tls-key; implies --tls.
    #[arg(long = "tls-cert", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); needs --tls-cert.
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: HOST); implies --tls.
    #[arg(long = "tls-server-name", value_name = "NAME", value_parser = server_name)]
    pub tls_server_name: Option<String>,
    /// User identity negotiation: this username (with --password-env: username and passcode).
    #[arg(long, value_name = "NAME", value_parser = non_empty)]
    pub user: Option<String>,
    /// Read the passcode for --user from this environment variable (never from the command line).
    #[arg(long = "password-env", value_name = "VAR", requires = "user", value_parser = non_empty)]
    pub password_env: Option<String>,
}

fn server_name(s: &str) -> Result<String, String> {
    rustls_pki_types::ServerName::try_from(s)
        .map(|_| s.to_string())
        .map_err(|_| "neither a DNS name nor an IP address".to_string())
}

fn non_empty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".to_string())
    } else {
        Ok(s.to_string())
    }
}

impl SecurityOpts {
    /// The TLS settings the flags ask for, if any.
    pub fn tls(&self) -> Option<TlsSettings> {
        let wanted = self.tls || self.tls_ca.is_some() || self.tls_cert.is_some() || self.tls_server_name.is_some();
        wanted.then(|| TlsSettings {
            server_name: self.tls_server_name.clone(),
            ca_file: self.tls_ca.clone(),
            cert_file: self.tls_cert.clone(),
            key_file: self.tls_key.clone(),
            ..TlsSettings::system_roots()
        })
    }

    /// The user identity the flags ask for, if any.
    pub fn user_identity(&self) -> Option<UserIdentitySettings> {
        let user = self.user.clone()?;
        let secret = self.password_env.clone().map(SecretSource::Env);
        Some(UserIdentitySettings {
            kind: if secret.is_some() {
                IdentityKind::UsernamePassword
            } else {
                IdentityKind::Username
            },
            username: Some(user),
            secret,
            positive_response_requested: false,
        })
    }
}

/// `scp --tls-cert --tls-key [--tls-ca]`: the embedded SCP serves DICOM TLS.
#[derive(Debug, Args, Clone, Default)]
pub struct ScpTlsOpts {
    /// Serve DICOM TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long = "tls-cert", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate signed by a CA of this bundle (PEM); needs --tls-cert.
    #[arg(long = "tls-ca", value_name = "FILE", requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
}

impl ScpTlsOpts {
    /// The server's TLS configuration, if asked for; an unreadable file is the error.
    pub fn server_config(&self) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                crate::association::tls_server_config(cert, key, self.tls_ca.as_deref()).map(|c| Some(c.into()))
            }
            _ => Ok(None),
        }
    }
}
