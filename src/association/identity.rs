//! User identity negotiation (PS3.7 D.3.3.7, PS3.8 D.3.3.7): the item our
//! A-ASSOCIATE-RQ carries, with its secret read from the environment or a file
//! when the association is opened, and the check of the acceptor's response.
//!
//! A secret is read into memory only to be encoded into the request; it is never
//! formatted into a log line or an error (errors name the variable or the file).

use dicom_ul::pdu::{UserIdentity, UserIdentityType, UserVariableItem};

use super::error::AssociationError;
use crate::config::{IdentityKind, SecretSource, UserIdentitySettings};

/// The user identity sub-item (type 58H) for `settings`.
pub(crate) fn request_item(settings: &UserIdentitySettings) -> Result<UserVariableItem, AssociationError> {
    let (kind, primary, secondary) = match settings.kind {
        IdentityKind::Username => (UserIdentityType::Username, username(settings)?, Vec::new()),
        IdentityKind::UsernamePassword => (
            UserIdentityType::UsernamePassword,
            username(settings)?,
            read_secret(settings, true)?,
        ),
        IdentityKind::Kerberos => (
            UserIdentityType::KerberosServiceTicket,
            read_secret(settings, false)?,
            Vec::new(),
        ),
        IdentityKind::Saml => (
            UserIdentityType::SamlAssertion,
            read_secret(settings, false)?,
            Vec::new(),
        ),
        IdentityKind::Jwt => (UserIdentityType::Jwt, read_secret(settings, true)?, Vec::new()),
    };
    for (field, value) in [("primary", &primary), ("secondary", &secondary)] {
        if value.len() > u16::MAX as usize {
            return Err(AssociationError::IdentitySetup(format!(
                "the {} {field} field is {} bytes; a user identity field holds at most 65535",
                settings.kind.as_str(),
                value.len()
            )));
        }
    }
    Ok(UserVariableItem::UserIdentityItem(UserIdentity::new(
        settings.positive_response_requested,
        kind,
        primary,
        secondary,
    )))
}

fn username(settings: &UserIdentitySettings) -> Result<Vec<u8>, AssociationError> {
    match &settings.username {
        Some(u) if !u.is_empty() => Ok(u.as_bytes().to_vec()),
        _ => Err(AssociationError::IdentitySetup(format!(
            "type {} needs a username",
            settings.kind.as_str()
        ))),
    }
}

/// The secret's bytes. `trim_newline`: a passcode or JWT in a file usually ends
/// with a newline that is not part of it; a Kerberos ticket or SAML assertion is
/// taken as it is.
fn read_secret(settings: &UserIdentitySettings, trim_newline: bool) -> Result<Vec<u8>, AssociationError> {
    let Some(source) = &settings.secret else {
        return Err(AssociationError::IdentitySetup(format!(
            "type {} needs a secret (password_env, password_file or token_file)",
            settings.kind.as_str()
        )));
    };
    let mut bytes = match source {
        SecretSource::Env(var) => match std::env::var_os(var) {
            Some(v) => v.into_encoded_bytes(),
            None => {
                return Err(AssociationError::IdentitySetup(format!(
                    "the environment variable {var} is not set"
                )))
            }
        },
        SecretSource::File(path) => std::fs::read(path).map_err(|e| {
            AssociationError::IdentitySetup(format!("cannot read the secret file {}: {}", path.display(), e.kind()))
        })?,
    };
    if trim_newline {
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(AssociationError::IdentitySetup(format!(
            "the secret from {} is empty",
            source.describe()
        )));
    }
    Ok(bytes)
}

/// Whether the A-ASSOCIATE-AC carries a user identity response (item 59H).
pub(crate) fn has_response(items: &[UserVariableItem]) -> bool {
    items
        .iter()
        .any(|item| matches!(item, UserVariableItem::Unknown(0x59, _)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(kind: IdentityKind, secret: Option<SecretSource>) -> UserIdentitySettings {
        UserIdentitySettings {
            kind,
            username: Some("alice".into()),
            secret,
            positive_response_requested: true,
        }
    }

    #[test]
    fn username_and_passcode_from_the_environment() {
        std::env::set_var("PACS_NET_TEST_IDENTITY_PW", "s3cret\n");
        let item = request_item(&settings(
            IdentityKind::UsernamePassword,
            Some(SecretSource::Env("PACS_NET_TEST_IDENTITY_PW".into())),
        ))
        .unwrap();
        let UserVariableItem::UserIdentityItem(id) = item else {
            panic!("not an identity item")
        };
        assert_eq!(id.primary_field(), b"alice");
        assert_eq!(id.secondary_field(), b"s3cret");
        assert!(id.positive_response_requested());
    }

    #[test]
    fn tokens_from_files_jwt_trimmed_saml_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let jwt = dir.path().join("t.jwt");
        std::fs::write(&jwt, "a.b.c\n").unwrap();
        let saml = dir.path().join("a.xml");
        std::fs::write(&saml, "<Assertion/>\n").unwrap();
        let item = |kind, path: &std::path::Path| {
            let mut s = settings(kind, Some(SecretSource::File(path.to_path_buf())));
            s.username = None;
            match request_item(&s).unwrap() {
                UserVariableItem::UserIdentityItem(id) => (id.identity_type(), id.primary_field()),
                _ => panic!("not an identity item"),
            }
        };
        assert_eq!(
            item(IdentityKind::Jwt, &jwt),
            (UserIdentityType::Jwt, b"a.b.c".to_vec())
        );
        assert_eq!(
            item(IdentityKind::Saml, &saml),
            (UserIdentityType::SamlAssertion, b"<Assertion/>\n".to_vec())
        );
        let err = request_item(&settings(
            IdentityKind::Kerberos,
            Some(SecretSource::File(dir.path().join("missing.tkt"))),
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("missing.tkt") && err.contains("not found"), "{err}");
    }

    #[test]
    fn a_missing_secret_names_its_source_not_a_value() {
        let err = request_item(&settings(
            IdentityKind::UsernamePassword,
            Some(SecretSource::Env("PACS_NET_TEST_IDENTITY_UNSET".into())),
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("PACS_NET_TEST_IDENTITY_UNSET is not set"), "{err}");
    }
}
