//! JWT apps ("server authentication with JWT"): the app config file Box's developer console
//! downloads, its encrypted private key opened once, and the signed assertions the token
//! endpoint trades for an access token of the service account or of a user.
//!
//! The key is an encrypted PKCS#8 document (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, PBES2),
//! opened with the `pkcs8` crate; unencrypted PKCS#8 or PKCS#1 keys are taken too. Assertions
//! are RS256, signed by `jsonwebtoken`, with the claims Box checks: `iss` the client id, `sub`
//! and `box_sub_type` the subject, `aud` Box's token URL (always Box's, also for another
//! server such as the emulator), a random `jti` and an `exp` 45 s out (Box takes at most 60).

use super::error::{ApiError, ApiResult};
use pkcs8::der::Decode;
use serde::Deserialize;

/// The audience of every assertion: Box's token endpoint.
const AUDIENCE: &str = "https://api.box.com/oauth2/token";
/// How far out an assertion expires.
const LIFETIME_SECS: u64 = 45;

/// The app config file (`boxAppSettings`, `enterpriseID`), as the console writes it.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppConfig {
    pub box_app_settings: AppSettings,
    #[serde(rename = "enterpriseID", default)]
    pub enterprise_id: Option<String>,
}

#[derive(Clone, Deserialize)]
pub struct AppSettings {
    #[serde(rename = "clientID")]
    pub client_id: String,
    #[serde(rename = "clientSecret")]
    pub client_secret: String,
    #[serde(rename = "appAuth")]
    pub app_auth: AppAuth,
}

#[derive(Clone, Deserialize)]
pub struct AppAuth {
    #[serde(rename = "publicKeyID")]
    pub public_key_id: String,
    #[serde(rename = "privateKey")]
    pub private_key: String,
    #[serde(default)]
    pub passphrase: String,
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret, the key or its passphrase.
        write!(
            f,
            "AppConfig({}, key {})",
            self.box_app_settings.client_id, self.box_app_settings.app_auth.public_key_id
        )
    }
}

impl AppConfig {
    pub fn parse(text: &str) -> ApiResult<AppConfig> {
        serde_json::from_str(text).map_err(|e| {
            ApiError::Config(format!(
                "not a Box app config file (boxAppSettings.clientID, clientSecret, appAuth.publicKeyID, \
                 privateKey, passphrase): {e}"
            ))
        })
    }

    pub fn load(path: &std::path::Path) -> ApiResult<AppConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ApiError::Config(format!("cannot read the app config {}: {e}", path.display())))?;
        AppConfig::parse(&text)
    }
}

/// Signs assertions with the app's private key.
pub struct Signer {
    key: jsonwebtoken::EncodingKey,
    key_id: String,
    client_id: String,
}

impl Signer {
    /// Opens the app's private key with its passphrase.
    pub fn new(app: &AppConfig) -> ApiResult<Signer> {
        let auth = &app.box_app_settings.app_auth;
        let pkcs1 = rsa_key_der(&auth.private_key, &auth.passphrase)?;
        Ok(Signer {
            key: jsonwebtoken::EncodingKey::from_rsa_der(&pkcs1),
            key_id: auth.public_key_id.clone(),
            client_id: app.box_app_settings.client_id.clone(),
        })
    }

    /// A signed assertion for the subject (`enterprise` or `user`, and its id).
    pub fn assertion(&self, subject_type: &str, subject_id: &str) -> ApiResult<String> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            sub: &'a str,
            box_sub_type: &'a str,
            aud: &'a str,
            jti: String,
            exp: u64,
        }
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let claims = Claims {
            iss: &self.client_id,
            sub: subject_id,
            box_sub_type: subject_type,
            aud: AUDIENCE,
            jti: hex::encode(rand::random::<[u8; 16]>()),
            exp: now + LIFETIME_SECS,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| ApiError::Config(format!("signing the JWT assertion: {e}")))
    }
}

/// The RSA private key (PKCS#1 DER) in `pem`, decrypted with `passphrase` when it is an
/// encrypted PKCS#8 document.
fn rsa_key_der(pem: &str, passphrase: &str) -> ApiResult<Vec<u8>> {
    use pkcs8::der::pem::PemLabel;
    let bad = |what: String| ApiError::Config(format!("the app's private key {what}"));
    let (label, der) = pkcs8::der::pem::decode_vec(pem.trim().as_bytes()).map_err(|e| {
        bad(format!("is not PEM ({e}); keys with Proc-Type headers must be converted with `openssl pkcs8 -topk8`"))
    })?;
    let info_der = match label {
        pkcs8::EncryptedPrivateKeyInfo::PEM_LABEL => {
            let encrypted =
                pkcs8::EncryptedPrivateKeyInfo::from_der(&der).map_err(|e| bad(format!("is damaged: {e}")))?;
            encrypted
                .decrypt(passphrase)
                .map_err(|e| bad(format!("cannot be opened with the passphrase in the config file: {e}")))?
                .as_bytes()
                .to_vec()
        }
        pkcs8::PrivateKeyInfo::PEM_LABEL => der,
        "RSA PRIVATE KEY" => return Ok(der),
        other => return Err(bad(format!("has an unknown PEM label \"{other}\""))),
    };
    let info = pkcs8::PrivateKeyInfo::from_der(&info_der).map_err(|e| bad(format!("is damaged: {e}")))?;
    const RSA_ENCRYPTION: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    if info.algorithm.oid != RSA_ENCRYPTION {
        return Err(bad("is not an RSA key".into()));
    }
    Ok(info.private_key.to_vec())
}
