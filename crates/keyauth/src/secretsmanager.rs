//! Keys from AWS Secrets Manager.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;

use crate::{BoxFuture, Error, KeySource, parse_secret};

/// Reads a secret (by name or ARN) with `GetSecretValue` and parses it with
/// [`parse_secret`].
#[derive(Debug, Clone)]
pub struct SecretsManagerKeys {
    client: Client,
    secret_id: String,
}

impl SecretsManagerKeys {
    /// A source for one secret.
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

impl KeySource for SecretsManagerKeys {
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<String>, Error>> {
        Box::pin(async move {
            let out = self
                .client
                .get_secret_value()
                .secret_id(&self.secret_id)
                .send()
                .await
                .map_err(|e| {
                    let code = e.code().unwrap_or("request failed").to_owned();
                    let msg = e.message().map(str::to_owned).unwrap_or_else(|| {
                        // The SDK's display of a dispatch error is safe: it
                        // names the transport failure, not the payload.
                        aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string()
                    });
                    Error::Source(format!("GetSecretValue({}): {code}: {msg}", self.secret_id))
                })?;
            let text = match (out.secret_string(), out.secret_binary()) {
                (Some(s), _) => s.to_owned(),
                (None, Some(b)) => String::from_utf8(b.as_ref().to_vec())
                    .map_err(|_| Error::BadSecret("binary secret is not UTF-8".into()))?,
                (None, None) => return Err(Error::BadSecret("secret has no value".into())),
            };
            parse_secret(&text)
        })
    }

    fn describe(&self) -> String {
        format!("Secrets Manager secret '{}'", self.secret_id)
    }
}
