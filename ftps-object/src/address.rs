//! Where the objects are: an `s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME` address,
//! with the credentials taken from the environment (never from the address, which shows
//! up in process lists and logs).

use std::fmt;

/// An object store's address, parsed from `s3://BUCKET[/PREFIX][?endpoint=URL&region=NAME]`.
///
/// - `BUCKET` is the bucket; `PREFIX`, if given, a key prefix every home lies beneath.
/// - `endpoint` is the service's URL (default: Amazon S3 of `region`); `http://` is used
///   as written (a service on loopback), so write `https://` for one across a network.
/// - `region` defaults to `us-east-1` (Garage's is whatever its `s3_region` says).
/// - `style=virtual` asks for virtual-host-style requests (`BUCKET.host`); the default is
///   path style, which every S3-compatible service answers.
///
/// The credentials come from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, if set,
/// `AWS_SESSION_TOKEN` (see [`with_env_credentials`](Self::with_env_credentials)).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Address {
    /// The bucket.
    pub bucket: String,
    /// The key prefix beneath which everything lies (no leading or trailing `/`; empty
    /// for the bucket's top).
    pub prefix: String,
    /// The service's URL, if not Amazon's.
    pub endpoint: Option<String>,
    /// The region.
    pub region: String,
    /// Virtual-host-style requests instead of path style.
    pub virtual_host: bool,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key.
    pub secret_access_key: Option<String>,
    /// A session token (temporary credentials).
    pub session_token: Option<String>,
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("Address")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("virtual_host", &self.virtual_host)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Why an address was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// Not a URL, or not `s3://`.
    Syntax(String),
    /// No bucket named.
    NoBucket,
    /// A query parameter this address does not know.
    UnknownParameter(String),
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::Syntax(why) => write!(f, "not an s3:// address: {why}"),
            AddressError::NoBucket => f.write_str("the address names no bucket (s3://BUCKET/...)"),
            AddressError::UnknownParameter(p) => write!(
                f,
                "unknown parameter {p:?} in the address (endpoint, region, style)"
            ),
        }
    }
}

impl std::error::Error for AddressError {}

impl Address {
    /// Parses `s3://BUCKET[/PREFIX][?endpoint=URL&region=NAME&style=virtual]`; the
    /// credentials are left empty.
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let url = url::Url::parse(text).map_err(|e| AddressError::Syntax(e.to_string()))?;
        if url.scheme() != "s3" {
            return Err(AddressError::Syntax(format!(
                "scheme {:?}, not s3",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(AddressError::Syntax(
                "credentials do not go in the address (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
                    .into(),
            ));
        }
        let bucket = url.host_str().unwrap_or_default().to_owned();
        if bucket.is_empty() {
            return Err(AddressError::NoBucket);
        }
        let prefix = percent_decode(url.path().trim_matches('/'));
        let mut address = Address {
            bucket,
            prefix,
            endpoint: None,
            region: "us-east-1".to_owned(),
            virtual_host: false,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
        };
        for (key, value) in url.query_pairs() {
            match &*key {
                "endpoint" => address.endpoint = Some(value.into_owned()),
                "region" => address.region = value.into_owned(),
                "style" if value == "virtual" => address.virtual_host = true,
                "style" if value == "path" => address.virtual_host = false,
                other => return Err(AddressError::UnknownParameter(other.to_owned())),
            }
        }
        Ok(address)
    }

    /// The same address with the credentials of the environment: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    pub fn with_env_credentials(mut self) -> Address {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        self.access_key_id = var("AWS_ACCESS_KEY_ID");
        self.secret_access_key = var("AWS_SECRET_ACCESS_KEY");
        self.session_token = var("AWS_SESSION_TOKEN");
        self
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("p={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        let a = Address::parse("s3://files/ftp/homes?endpoint=http://127.0.0.1:3900&region=garage")
            .expect("parses");
        assert_eq!(a.bucket, "files");
        assert_eq!(a.prefix, "ftp/homes");
        assert_eq!(a.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(a.region, "garage");
        let b = Address::parse("s3://b").expect("parses");
        assert_eq!((b.prefix.as_str(), b.region.as_str()), ("", "us-east-1"));
        assert_eq!(Address::parse("s3:///x"), Err(AddressError::NoBucket));
        assert!(matches!(
            Address::parse("s3://k:s@b/"),
            Err(AddressError::Syntax(_))
        ));
        assert!(matches!(
            Address::parse("http://b/"),
            Err(AddressError::Syntax(_))
        ));
        assert_eq!(
            Address::parse("s3://b/?secret=x"),
            Err(AddressError::UnknownParameter("secret".into()))
        );
    }
}
