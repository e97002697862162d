//! DICOM TLS (PS3.15 B.1, BCP 195) with rustls: the client side of a node's TLS
//! settings (trust, hostname, client certificate, versions), the handshake over
//! the tuned TCP socket, and errors that say which check failed.
//!
//! Crypto provider: *ring*. It builds with a C compiler alone, where aws-lc-rs
//! needs cmake (and nasm on some targets), which CI images and hospital build
//! hosts often lack; both are FIPS-free here and equally fast for DICOM's bulk
//! AES-GCM. Trust roots without `ca_file`: the operating system's store
//! (rustls-native-certs), because a hospital installs its own CA there; a
//! built-in public list (webpki-roots) would not know it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::error::{AssociationError, TlsFailure};
use crate::config::{TlsSettings, TlsVersion};

/// The TLS stream of a client association.
pub type ClientTlsStream = tokio_rustls::client::TlsStream<TcpStream>;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn versions(min: TlsVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static BOTH: [&rustls::SupportedProtocolVersion; 2] = [&rustls::version::TLS13, &rustls::version::TLS12];
    static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match min {
        TlsVersion::Tls12 => &BOTH,
        TlsVersion::Tls13 => &TLS13_ONLY,
    }
}

/// A node's TLS client: its rustls configuration, built once when the node is
/// created (a file that cannot be read fails every association with the reason).
pub struct TlsClient {
    settings: TlsSettings,
    server_name: String,
    config: Result<Arc<rustls::ClientConfig>, String>,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .field("settings", &self.settings)
            .field("ready", &self.config.is_ok())
            .finish()
    }
}

impl TlsClient {
    /// `host`: the node's host, the name checked when `server_name` is not set.
    /// `verify_peer: false` is warned about here, at every start.
    pub fn new(settings: &TlsSettings, host: &str, node: &str) -> TlsClient {
        let server_name = settings.server_name.clone().unwrap_or_else(|| host.to_string());
        if !settings.verify_peer {
            tracing::warn!(
                node,
                "TLS verify_peer is false: the server's certificate and name are NOT checked; \
                 anyone on the network path can impersonate this node"
            );
        }
        TlsClient {
            config: client_config(settings).map(Arc::new),
            settings: settings.clone(),
            server_name,
        }
    }

    /// The name the server's certificate must carry.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// TLS handshake over a connected, tuned socket, within `limit`.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        addr: &str,
        limit: Duration,
    ) -> Result<ClientTlsStream, AssociationError> {
        let config = self.config.clone().map_err(AssociationError::TlsSetup)?;
        let name = ServerName::try_from(self.server_name.clone()).map_err(|_| {
            AssociationError::TlsSetup(format!(
                "TLS server name {:?} is neither a DNS name nor an IP address",
                self.server_name
            ))
        })?;
        let connector = tokio_rustls::TlsConnector::from(config);
        match timeout(limit, connector.connect(name, tcp)).await {
            Ok(Ok(stream)) => {
                if let (Some(version), Some(suite)) =
                    (stream.get_ref().1.protocol_version(), stream.get_ref().1.negotiated_cipher_suite())
                {
                    tracing::debug!(%addr, version = ?version, suite = ?suite.suite(), "TLS established");
                }
                Ok(stream)
            }
            Ok(Err(e)) => Err(self.handshake_error(addr, e)),
            Err(_) => Err(AssociationError::Tls {
                addr: addr.to_string(),
                kind: TlsFailure::Timeout,
                message: format!(
                    "no TLS handshake within {limit:?}: the port may not speak TLS (a plain DICOM port waits for an A-ASSOCIATE-RQ)"
                ),
            }),
        }
    }

    fn trust_words(&self) -> String {
        match &self.settings.ca_file {
            Some(p) => format!("the CA bundle {}", p.display()),
            None => "the system's trust roots".to_string(),
        }
    }

    fn handshake_error(&self, addr: &str, e: std::io::Error) -> AssociationError {
        let (kind, message) = match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(err) => self.classify(err),
            None if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) =>
            {
                (
                    TlsFailure::NotTls,
                    format!(
                        "the remote {} the connection during the TLS handshake: this port may not speak TLS \
                         (a plain DICOM port), or the remote refused us (e.g. it requires a client certificate)",
                        if e.kind() == std::io::ErrorKind::UnexpectedEof {
                            "closed"
                        } else {
                            "reset"
                        }
                    ),
                )
            }
            None => (TlsFailure::Handshake, format!("TLS handshake failed: {e}")),
        };
        AssociationError::Tls {
            addr: addr.to_string(),
            kind,
            message,
        }
    }

    fn classify(&self, err: &rustls::Error) -> (TlsFailure, String) {
        use rustls::Error as E;
        match err {
            E::InvalidCertificate(cert) => self.certificate_error(cert),
            E::AlertReceived(alert) => alert_error(*alert, self.settings.cert_file.is_some()),
            E::PeerIncompatible(p) => match p {
                rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13
                | rustls::PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
                | rustls::PeerIncompatible::SupportedVersionsExtensionRequired
                | rustls::PeerIncompatible::Tls12NotOffered
                | rustls::PeerIncompatible::Tls12NotOfferedOrEnabled => (
                    TlsFailure::ProtocolVersion,
                    format!(
                        "TLS protocol version: the server does not speak a version we offer ({}); \
                         TLS 1.0 and 1.1 are never offered (RFC 8996) [{p:?}]",
                        offered(self.settings.min_version)
                    ),
                ),
                other => (
                    TlsFailure::Handshake,
                    format!("TLS handshake failed: the server and we have nothing in common ({other:?})"),
                ),
            },
            E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => (
                TlsFailure::NotTls,
                format!(
                    "the remote does not speak TLS: it answered our TLS ClientHello with something else \
                     ({err}); is this a plain (non-TLS) DICOM port?"
                ),
            ),
            other => (TlsFailure::Handshake, format!("TLS handshake failed: {other}")),
        }
    }

    fn certificate_error(&self, cert: &CertificateError) -> (TlsFailure, String) {
        match cert {
            CertificateError::UnknownIssuer => (
                TlsFailure::UnknownCa,
                format!(
                    "unknown CA: the server's certificate is not signed by a CA in {}",
                    self.trust_words()
                ),
            ),
            CertificateError::NotValidForName => (
                TlsFailure::NameMismatch,
                format!(
                    "certificate name mismatch: expected {:?}, the server's certificate does not carry it",
                    self.server_name
                ),
            ),
            CertificateError::NotValidForNameContext { expected, presented } => (
                TlsFailure::NameMismatch,
                format!(
                    "certificate name mismatch: expected {}, the server's certificate is for {} \
                     (set tls.server_name / --tls-server-name to a name it carries, or fix the certificate)",
                    server_name_words(expected),
                    if presented.is_empty() {
                        "no name at all".to_string()
                    } else {
                        presented
                            .iter()
                            .map(|p| presented_words(p))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ),
            CertificateError::Expired => (TlsFailure::Expired, "the server's certificate has expired".to_string()),
            CertificateError::ExpiredContext { time, not_after } => (
                TlsFailure::Expired,
                format!(
                    "the server's certificate has expired: valid until {}, now {}",
                    utc(*not_after),
                    utc(*time)
                ),
            ),
            CertificateError::NotValidYet => (
                TlsFailure::Expired,
                "the server's certificate is not valid yet".to_string(),
            ),
            CertificateError::NotValidYetContext { time, not_before } => (
                TlsFailure::Expired,
                format!(
                    "the server's certificate is not valid yet: valid from {}, now {}",
                    utc(*not_before),
                    utc(*time)
                ),
            ),
            other => (
                TlsFailure::BadCertificate,
                format!("the server's certificate was refused: {other:?}"),
            ),
        }
    }
}

/// A TLS alert or error that arrives after the handshake, on the first read or
/// write: with TLS 1.3 the server checks our client certificate only once our side
/// of the handshake is done.
pub(crate) fn after_handshake(e: &std::io::Error) -> Option<AssociationError> {
    let err = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    let (kind, message) = match err {
        rustls::Error::AlertReceived(alert) => alert_error(*alert, true),
        other => (TlsFailure::Handshake, format!("TLS error: {other}")),
    };
    Some(AssociationError::Tls {
        addr: "the remote".to_string(),
        kind,
        message,
    })
}

fn offered(min: TlsVersion) -> &'static str {
    match min {
        TlsVersion::Tls12 => "TLS 1.2 and 1.3",
        TlsVersion::Tls13 => "TLS 1.3 only",
    }
}

/// webpki's `DnsName("pacs.example.org")` / `IpAddress(10.1.2.3)` as
/// `"pacs.example.org"` / `IP address 10.1.2.3`.
fn presented_words(presented: &str) -> String {
    if let Some(name) = presented.strip_prefix("DnsName(").and_then(|r| r.strip_suffix(')')) {
        return name.to_string();
    }
    if let Some(ip) = presented.strip_prefix("IpAddress(").and_then(|r| r.strip_suffix(')')) {
        return format!("IP address {ip}");
    }
    presented.to_string()
}

fn server_name_words(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => format!("{:?}", d.as_ref()),
        ServerName::IpAddress(ip) => format!("IP address {}", std::net::IpAddr::from(*ip)),
        other => format!("{other:?}"),
    }
}

fn alert_error(alert: AlertDescription, sent_cert: bool) -> (TlsFailure, String) {
    use AlertDescription as A;
    match alert {
        A::ProtocolVersion => (
            TlsFailure::ProtocolVersion,
            "TLS protocol version: the server refused the versions we offer (alert protocol_version); \
             we offer TLS 1.2 and 1.3 only (RFC 8996)"
                .to_string(),
        ),
        A::CertificateRequired => (
            TlsFailure::ClientCertificate,
            "the server requires a client certificate (alert CertificateRequired); set tls.cert_file and \
             tls.key_file (--tls-cert/--tls-key)"
                .to_string(),
        ),
        A::HandshakeFailure if !sent_cert => (
            TlsFailure::ClientCertificate,
            format!(
                "the server requires a client certificate (alert {alert:?}); set tls.cert_file and tls.key_file \
                 (--tls-cert/--tls-key)"
            ),
        ),
        A::BadCertificate
        | A::UnknownCA
        | A::CertificateUnknown
        | A::AccessDenied
        | A::CertificateExpired
        | A::CertificateRevoked
        | A::DecryptError => (
            TlsFailure::ClientCertificate,
            format!(
                "the server refused our client certificate (alert {alert:?}){}",
                if sent_cert { "" } else { ": we sent none" }
            ),
        ),
        other => (
            TlsFailure::Handshake,
            format!("the server ended the TLS handshake (alert {other:?})"),
        ),
    }
}

/// A UTC time as `2026-12-02 01:30:00 UTC` (no date crate for one line).
fn utc(t: UnixTime) -> String {
    let secs = t.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {what} {}: {}", path.display(), pem_error(e)))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read {what} {}: {}", path.display(), pem_error(e)))?;
    if certs.is_empty() {
        return Err(format!("{what} {} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("cannot read the private key {}: {}", path.display(), pem_error(e)))
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of the expected kind found".to_string(),
        other => format!("{other:?}"),
    }
}

fn root_store(ca_file: Option<&PathBuf>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_certs(path, "the CA bundle")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("the CA bundle {}: {e}", path.display()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::debug!(error = %e, "a system trust root could not be loaded");
            }
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(
                    "no system trust roots found (install ca-certificates, or give tls.ca_file / --tls-ca)".to_string(),
                );
            }
        }
    }
    Ok(roots)
}

fn client_config(s: &TlsSettings) -> Result<rustls::ClientConfig, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(s.min_version))
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = if s.verify_peer {
        builder.with_root_certificates(root_store(s.ca_file.as_ref())?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerVerification(provider())))
    };
    let config = match (&s.cert_file, &s.key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_certs(cert, "the client certificate")?, read_key(key)?)
            .map_err(|e| {
                format!(
                    "the client certificate {} and key {}: {e}",
                    cert.display(),
                    key.display()
                )
            })?,
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// The embedded SCP's TLS configuration: its certificate and key, and with a CA
/// bundle, a client certificate signed by it is required.
pub fn server_config(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<rustls::ServerConfig, String> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(TlsVersion::Tls12))
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(root_store(Some(&ca.to_path_buf()))?),
                provider(),
            )
            .build()
            .map_err(|e| format!("the client CA bundle {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(read_certs(cert, "the server certificate")?, read_key(key)?)
        .map_err(|e| format!("the certificate {} and key {}: {e}", cert.display(), key.display()))
}

/// `verify_peer: false`: the certificate chain and name are not checked (the
/// handshake signatures still are, so the session is at least with the key holder).
#[derive(Debug)]
struct NoServerVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_in_words() {
        assert_eq!(presented_words("DnsName(\"pacs.example.org\")"), "\"pacs.example.org\"");
        assert_eq!(presented_words("IpAddress(10.1.2.3)"), "IP address 10.1.2.3");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(
            utc(UnixTime::since_unix_epoch(Duration::from_secs(0))),
            "1970-01-01 00:00:00 UTC"
        );
        assert_eq!(
            utc(UnixTime::since_unix_epoch(Duration::from_secs(1_795_000_000))),
            "2026-11-18 11:06:40 UTC"
        );
    }
}
