//! Images in Azure Blob Storage, through the official Azure SDK for Rust: the work of the
//! `azure-blobs` scenario ("a web server loading N images from blob storage", for real).
//!
//! The pieces, in the order a run uses them:
//!
//! - **Where**: an [`AzureTarget`]: an account (blob endpoint + account SAS; the harness's own
//!   Azurite, or `AZURE_STORAGE_CONNECTION_STRING`), or one container given by its SAS URL
//!   (`BENCH_AZURE_CONTAINER_SAS_URL`). [`AzureTarget::from_env`] reads the environment.
//! - **Who**: the SDK has no shared-key authentication, so a [`SharedKey`] (the account name and
//!   its base64 key; [`SharedKey::emulator`] is Azurite's published one) signs an *account SAS*
//!   ([`SharedKey::account_sas`]: HMAC-SHA256 over the documented string-to-sign), and every
//!   client is built from a URL that carries it.
//! - **Set-up** (not timed): [`upload_images`] creates the container (for an account), encodes
//!   N deterministic PNG images ([`png_image`]), uploads them, and remembers each blob's name
//!   and [`Digest`] in an [`AzureContainer`].
//! - **The run**: one [`FetchAzureBlob`] per image (a blocking task for threads and processes,
//!   registered as `"scenarios::fetch_azure_blob"`), or [`fetch_azure_blob`] on the async
//!   backend; each downloads one blob with the SDK and returns the [`Digest`] of its bytes.
//! - **The check** (after the clock stops): `Tally::of_in` compares every digest with the one
//!   remembered at upload.
//!
//! The SDK is built without TLS by default (Azurite is plain HTTP on loopback); an `https`
//! endpoint needs this crate's `azure-tls` feature (`bench-harness --features azure-tls`), and
//! without it every client refuses with a message saying so.
//!
//! ```
//! use scenarios::azure::{SharedKey, png_image};
//!
//! // The SAS that Azurite accepts: signed with its well-known key, valid for an hour.
//! let sas = SharedKey::emulator().account_sas(std::time::Duration::from_secs(3600));
//! assert!(sas.starts_with("sv=") && sas.contains("&sig="));
//! // The images: real PNG files, the same bytes on every run.
//! let image = png_image(3, 64, 48);
//! assert!(image.starts_with(b"\x89PNG\r\n\x1a\n"));
//! assert_eq!(image, png_image(3, 64, 48));
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RequestContent, RetryOptions, Url};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use backend_process::RemoteTask;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use executor_core::{Task, TaskError};
use futures_util::{StreamExt, TryStreamExt};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::blob::Digest;
use crate::io::chain;

/// The storage emulator's account name (Azurite's, and the old Storage Emulator's).
///
/// ```
/// assert_eq!(scenarios::azure::EMULATOR_ACCOUNT, "devstoreaccount1");
/// ```
pub const EMULATOR_ACCOUNT: &str = "devstoreaccount1";

/// The storage emulator's account key, published by Microsoft for every emulator: not a secret.
///
/// ```
/// assert!(scenarios::azure::EMULATOR_KEY.ends_with("=="));
/// ```
pub const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The SAS version the harness signs (`sv`). From 2020-12-06 on, the account SAS's string-to-sign
/// has an encryption-scope line; this one is accepted by Azure and by Azurite 3.
///
/// ```
/// assert_eq!(scenarios::azure::SAS_VERSION, "2022-11-02");
/// ```
pub const SAS_VERSION: &str = "2022-11-02";

/// The environment variable naming a container SAS URL to run the scenario in (it must allow
/// read, write, create and list).
///
/// ```
/// assert_eq!(scenarios::azure::CONTAINER_SAS_URL_ENV, "BENCH_AZURE_CONTAINER_SAS_URL");
/// ```
pub const CONTAINER_SAS_URL_ENV: &str = "BENCH_AZURE_CONTAINER_SAS_URL";

/// The environment variable holding a storage connection string (Azure's usual one).
///
/// ```
/// assert_eq!(scenarios::azure::CONNECTION_STRING_ENV, "AZURE_STORAGE_CONNECTION_STRING");
/// ```
pub const CONNECTION_STRING_ENV: &str = "AZURE_STORAGE_CONNECTION_STRING";

/// The container the harness creates in an account it is given (and in its own Azurite).
///
/// ```
/// assert_eq!(scenarios::azure::CONTAINER, "bench-harness");
/// ```
pub const CONTAINER: &str = "bench-harness";

/// How many uploads the set-up keeps in flight at once.
const UPLOADS_IN_FLIGHT: usize = 16;

/// The largest image side [`png_image`] makes (and a scenario may ask for).
///
/// ```
/// assert_eq!(scenarios::azure::MAX_IMAGE_SIDE, 4096);
/// ```
pub const MAX_IMAGE_SIDE: u32 = 4096;

/// Whether this build can reach `https` endpoints (the `azure-tls` feature).
///
/// ```
/// assert_eq!(scenarios::azure::TLS, cfg!(feature = "azure-tls"));
/// ```
pub const TLS: bool = cfg!(feature = "azure-tls");

/// A storage account's name and key: what signs an account SAS.
///
/// ```
/// use scenarios::azure::SharedKey;
/// let key = SharedKey::new("myaccount", "c2VjcmV0").unwrap();
/// assert_eq!(key.account(), "myaccount");
/// assert!(SharedKey::new("myaccount", "not base64!").is_err());
/// ```
#[derive(Clone)]
pub struct SharedKey {
    account: String,
    key: Vec<u8>,
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key never appears in logs or messages.
        f.debug_struct("SharedKey")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl SharedKey {
    /// An account and its key as the portal shows it (base64).
    ///
    /// ```
    /// let e = scenarios::azure::SharedKey::new("a", "%%").unwrap_err();
    /// assert!(e.contains("base64"), "{e}");
    /// ```
    pub fn new(account: &str, key_base64: &str) -> Result<SharedKey, String> {
        let key = BASE64
            .decode(key_base64.trim())
            .map_err(|e| format!("the account key of `{account}` is not base64: {e}"))?;
        Ok(SharedKey {
            account: account.to_string(),
            key,
        })
    }

    /// The storage emulator's well-known account and key ([`EMULATOR_ACCOUNT`], [`EMULATOR_KEY`]).
    ///
    /// ```
    /// assert_eq!(scenarios::azure::SharedKey::emulator().account(), "devstoreaccount1");
    /// ```
    pub fn emulator() -> SharedKey {
        SharedKey::new(EMULATOR_ACCOUNT, EMULATOR_KEY).expect("the emulator key is base64")
    }

    /// The account name.
    ///
    /// ```
    /// assert_eq!(scenarios::azure::SharedKey::emulator().account(), "devstoreaccount1");
    /// ```
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The signature of `string_to_sign`: base64 of HMAC-SHA256 keyed with the account key.
    ///
    /// ```
    /// use scenarios::azure::SharedKey;
    /// // RFC 4231, test case 2: key "Jefe".
    /// let key = SharedKey::new("a", "SmVmZQ==").unwrap();
    /// assert_eq!(
    ///     key.sign("what do ya want for nothing?"),
    ///     "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
    /// );
    /// ```
    pub fn sign(&self, string_to_sign: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(string_to_sign.as_bytes());
        BASE64.encode(mac.finalize().into_bytes())
    }

    /// An account SAS for the blob service, valid from now for `valid_for`: the query string
    /// (without `?`) to append to the account's blob endpoint or any URL under it.
    ///
    /// It grants read, write, delete, list, add and create (`sp=rwdlac`) on the service,
    /// containers and objects (`srt=sco`) of the blob service (`ss=b`), over https or http,
    /// with version [`SAS_VERSION`]; the signature is [`sign`](SharedKey::sign) over
    /// [`account_sas_string_to_sign`]. Azure (and Azurite) refuse a request whose signature does
    /// not match with `403 AuthorizationFailure`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sas = scenarios::azure::SharedKey::emulator().account_sas(Duration::from_secs(600));
    /// assert!(sas.starts_with("sv=2022-11-02&ss=b&srt=sco&sp=rwdlac&se=20"), "{sas}");
    /// assert!(sas.contains("&spr=https%2Chttp&sig="), "{sas}");
    /// ```
    pub fn account_sas(&self, valid_for: Duration) -> String {
        let expiry = sas_time(time::OffsetDateTime::now_utc() + valid_for);
        self.account_sas_until(&expiry)
    }

    /// [`account_sas`](SharedKey::account_sas) with a given expiry, as `YYYY-MM-DDThh:mm:ssZ`
    /// (for reproducible signatures in tests).
    ///
    /// ```
    /// let key = scenarios::azure::SharedKey::emulator();
    /// assert_eq!(key.account_sas_until("2030-01-01T00:00:00Z"), key.account_sas_until("2030-01-01T00:00:00Z"));
    /// assert!(key.account_sas_until("2030-01-01T00:00:00Z").contains("&se=2030-01-01T00%3A00%3A00Z&"));
    /// ```
    pub fn account_sas_until(&self, expiry: &str) -> String {
        let (permissions, services, resource_types, protocol) =
            ("rwdlac", "b", "sco", "https,http");
        let string_to_sign = account_sas_string_to_sign(
            &self.account,
            permissions,
            services,
            resource_types,
            expiry,
            protocol,
            SAS_VERSION,
        );
        let signature = self.sign(&string_to_sign);
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("sv", SAS_VERSION)
            .append_pair("ss", services)
            .append_pair("srt", resource_types)
            .append_pair("sp", permissions)
            .append_pair("se", expiry)
            .append_pair("spr", protocol)
            .append_pair("sig", &signature);
        query.finish()
    }
}

/// The string an account SAS signs (version 2020-12-06 and later): account name, permissions,
/// services, resource types, start (empty: valid from now), expiry, IP range (empty: any),
/// protocol, version and encryption scope (empty), one per line, with a final newline.
///
/// ```
/// let s = scenarios::azure::account_sas_string_to_sign(
///     "devstoreaccount1", "rl", "b", "sco", "2030-01-01T00:00:00Z", "https,http", "2022-11-02");
/// assert_eq!(s, "devstoreaccount1\nrl\nb\nsco\n\n2030-01-01T00:00:00Z\n\nhttps,http\n2022-11-02\n\n");
/// ```
pub fn account_sas_string_to_sign(
    account: &str,
    permissions: &str,
    services: &str,
    resource_types: &str,
    expiry: &str,
    protocol: &str,
    version: &str,
) -> String {
    let (start, ip, encryption_scope) = ("", "", "");
    [
        account,
        permissions,
        services,
        resource_types,
        start,
        expiry,
        ip,
        protocol,
        version,
        encryption_scope,
        "",
    ]
    .join("\n")
}

/// A time as a SAS writes it: UTC, whole seconds, `YYYY-MM-DDThh:mm:ssZ`.
fn sas_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Where the scenario's blobs live.
///
/// ```
/// use scenarios::azure::AzureTarget;
/// let t = AzureTarget::emulator("http://127.0.0.1:10000/devstoreaccount1");
/// assert_eq!(t.to_string(), "container `bench-harness` of http://127.0.0.1:10000/devstoreaccount1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzureTarget {
    /// A storage account: the harness creates [`CONTAINER`] in it (if missing) and uploads there.
    Account {
        /// The blob endpoint, e.g. `https://myaccount.blob.core.windows.net` or Azurite's
        /// `http://127.0.0.1:10000/devstoreaccount1` (no trailing `/`).
        blob_endpoint: String,
        /// An account SAS query string (no `?`) that allows creating containers and writing,
        /// reading and listing blobs.
        sas: String,
        /// The container to use.
        container: String,
    },
    /// One existing container, by a SAS URL that allows read, write, create and list.
    Container {
        /// `https://account.blob.core.windows.net/container?sv=...&sig=...`
        sas_url: String,
    },
}

impl AzureTarget {
    /// The harness's own Azurite at `blob_endpoint` (`http://127.0.0.1:PORT/devstoreaccount1`),
    /// with an account SAS signed by the emulator's well-known key, valid for a day.
    ///
    /// ```
    /// use scenarios::azure::AzureTarget;
    /// let AzureTarget::Account { sas, container, .. } = AzureTarget::emulator("http://127.0.0.1:1/devstoreaccount1") else {
    ///     unreachable!()
    /// };
    /// assert!(sas.contains("sig="));
    /// assert_eq!(container, "bench-harness");
    /// ```
    pub fn emulator(blob_endpoint: &str) -> AzureTarget {
        AzureTarget::Account {
            blob_endpoint: blob_endpoint.trim_end_matches('/').to_string(),
            sas: SharedKey::emulator().account_sas(Duration::from_secs(24 * 3600)),
            container: CONTAINER.to_string(),
        }
    }

    /// The target the environment names: `$BENCH_AZURE_CONTAINER_SAS_URL` first, else
    /// `$AZURE_STORAGE_CONNECTION_STRING`; `Ok(None)` when neither is set (the harness then
    /// starts Azurite). A variable that is set but wrong is an error saying why.
    ///
    /// ```
    /// // Neither variable is set in the tests.
    /// if std::env::var_os("BENCH_AZURE_CONTAINER_SAS_URL").is_none()
    ///     && std::env::var_os("AZURE_STORAGE_CONNECTION_STRING").is_none()
    /// {
    ///     assert_eq!(scenarios::azure::AzureTarget::from_env(), Ok(None));
    /// }
    /// ```
    pub fn from_env() -> Result<Option<AzureTarget>, String> {
        let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(url) = non_empty(CONTAINER_SAS_URL_ENV) {
            return AzureTarget::from_container_sas_url(&url)
                .map(Some)
                .map_err(|e| format!("${CONTAINER_SAS_URL_ENV}: {e}"));
        }
        if let Some(s) = non_empty(CONNECTION_STRING_ENV) {
            return AzureTarget::from_connection_string(&s)
                .map(Some)
                .map_err(|e| format!("${CONNECTION_STRING_ENV}: {e}"));
        }
        Ok(None)
    }

    /// A container SAS URL (`https://account.blob.core.windows.net/container?sv=...&sig=...`).
    ///
    /// ```
    /// use scenarios::azure::AzureTarget;
    /// let t = AzureTarget::from_container_sas_url("https://acct.blob.core.windows.net/imgs?sv=1&sig=abc").unwrap();
    /// assert_eq!(t.to_string(), "container https://acct.blob.core.windows.net/imgs");
    /// assert!(AzureTarget::from_container_sas_url("https://acct.blob.core.windows.net/imgs").is_err());
    /// ```
    pub fn from_container_sas_url(url: &str) -> Result<AzureTarget, String> {
        let parsed = Url::parse(url.trim()).map_err(|e| format!("not a URL: {e}"))?;
        if !parsed.query_pairs().any(|(k, _)| k == "sig") {
            return Err(format!(
                "{} has no SAS (no `sig=` in its query)",
                redact(url)
            ));
        }
        if parsed.path().trim_matches('/').is_empty() {
            return Err(format!("{} names no container", redact(url)));
        }
        Ok(AzureTarget::Container {
            sas_url: url.trim().to_string(),
        })
    }

    /// A storage connection string: `AccountName` and `AccountKey` (an account SAS is signed
    /// with the key) or `SharedAccessSignature`; the endpoint is `BlobEndpoint`, else
    /// `{DefaultEndpointsProtocol}://{AccountName}.blob.{EndpointSuffix}` (https,
    /// `core.windows.net` by default). `UseDevelopmentStorage=true` is Azurite on its default
    /// port, `http://127.0.0.1:10000/devstoreaccount1`, with the well-known key.
    ///
    /// ```
    /// use scenarios::azure::AzureTarget;
    /// let t = AzureTarget::from_connection_string(
    ///     "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net",
    /// ).unwrap();
    /// assert_eq!(t.to_string(), "container `bench-harness` of https://acct.blob.core.windows.net");
    /// let t = AzureTarget::from_connection_string("UseDevelopmentStorage=true").unwrap();
    /// assert_eq!(t.to_string(), "container `bench-harness` of http://127.0.0.1:10000/devstoreaccount1");
    /// assert!(AzureTarget::from_connection_string("AccountName=acct").is_err());
    /// ```
    pub fn from_connection_string(s: &str) -> Result<AzureTarget, String> {
        let mut fields: HashMap<String, String> = HashMap::new();
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                format!(
                    "`{}` is not key=value",
                    part.split('=').next().unwrap_or("")
                )
            })?;
            fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        let get = |k: &str| fields.get(k).map(String::as_str);
        if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(AzureTarget::emulator(&format!(
                "http://127.0.0.1:10000/{EMULATOR_ACCOUNT}"
            )));
        }
        let account = get("accountname");
        let blob_endpoint = match (get("blobendpoint"), account) {
            (Some(endpoint), _) => endpoint.trim_end_matches('/').to_string(),
            (None, Some(account)) => format!(
                "{}://{account}.blob.{}",
                get("defaultendpointsprotocol").unwrap_or("https"),
                get("endpointsuffix").unwrap_or("core.windows.net")
            ),
            (None, None) => {
                return Err("has neither BlobEndpoint nor AccountName".into());
            }
        };
        let sas = match (get("sharedaccesssignature"), account, get("accountkey")) {
            (Some(sas), _, _) => sas.trim_start_matches('?').to_string(),
            (None, Some(account), Some(key)) => {
                SharedKey::new(account, key)?.account_sas(Duration::from_secs(24 * 3600))
            }
            _ => {
                return Err(
                    "has neither AccountName with AccountKey nor SharedAccessSignature".into(),
                );
            }
        };
        Ok(AzureTarget::Account {
            blob_endpoint,
            sas,
            container: CONTAINER.to_string(),
        })
    }

    /// Whether the target is reached over https (which needs the `azure-tls` feature).
    ///
    /// ```
    /// assert!(!scenarios::azure::AzureTarget::emulator("http://127.0.0.1:1/devstoreaccount1").is_https());
    /// ```
    pub fn is_https(&self) -> bool {
        let url = match self {
            AzureTarget::Account { blob_endpoint, .. } => blob_endpoint,
            AzureTarget::Container { sas_url } => sas_url,
        };
        url.trim().to_ascii_lowercase().starts_with("https:")
    }

    /// The container's URL with the SAS as its query.
    fn container_url(&self) -> String {
        match self {
            AzureTarget::Account {
                blob_endpoint,
                sas,
                container,
            } => format!("{blob_endpoint}/{container}?{sas}"),
            AzureTarget::Container { sas_url } => sas_url.clone(),
        }
    }
}

impl fmt::Display for AzureTarget {
    /// Where, without the SAS.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AzureTarget::Account {
                blob_endpoint,
                container,
                ..
            } => write!(f, "container `{container}` of {}", redact(blob_endpoint)),
            AzureTarget::Container { sas_url } => write!(f, "container {}", redact(sas_url)),
        }
    }
}

/// A URL without its query (where a SAS would be): what messages show.
///
/// ```
/// assert_eq!(scenarios::azure::redact("http://h/acct/c?sv=1&sig=secret"), "http://h/acct/c");
/// assert_eq!(scenarios::azure::redact("http://h/acct"), "http://h/acct");
/// ```
pub fn redact(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// The name the set-up gives image `index` of `width` × `height`: the size is in the name, so
/// runs of different sizes sharing a container never mix their blobs up.
///
/// ```
/// assert_eq!(scenarios::azure::image_name(7, 256, 128), "image-256x128-00007.png");
/// ```
pub fn image_name(index: u64, width: u32, height: u32) -> String {
    format!("image-{width}x{height}-{index:05}.png")
}

/// Image `index` as a PNG file of `width` × `height` RGB pixels: a diagonal gradient whose hue
/// depends on the index, with a little deterministic noise (like a photograph, it does not
/// compress to nothing). The same bytes on every run and in every process.
///
/// # Panics
///
/// If a side is 0 or above [`MAX_IMAGE_SIDE`] (scenario validation rejects those).
///
/// ```
/// use scenarios::azure::png_image;
/// let a = png_image(0, 32, 16);
/// assert!(a.starts_with(b"\x89PNG\r\n\x1a\n"));
/// assert_eq!(&a[16..24], &[0, 0, 0, 32, 0, 0, 0, 16]); // IHDR: width, height
/// assert_ne!(a, png_image(1, 32, 16));
/// ```
pub fn png_image(index: u64, width: u32, height: u32) -> Vec<u8> {
    assert!(
        (1..=MAX_IMAGE_SIDE).contains(&width) && (1..=MAX_IMAGE_SIDE).contains(&height),
        "image sides must be 1..={MAX_IMAGE_SIDE}, not {width}x{height}"
    );
    let (w, h) = (width as usize, height as usize);
    let mut pixels = vec![0u8; w * h * 3];
    let mut noise = crate::blob::blob_bytes(index, w * h).into_iter();
    let tint = (index.wrapping_mul(37) % 256) as usize;
    // Red across, green down, blue along the diagonal from the index's tint; plus noise of up
    // to 31 in every channel.
    let (across, down) = ((w - 1).max(1), (h - 1).max(1));
    for y in 0..h {
        for x in 0..w {
            let n = usize::from(noise.next().unwrap_or(0) & 0x1f);
            let p = &mut pixels[(y * w + x) * 3..][..3];
            p[0] = ((x * 255 / across + n) % 256) as u8;
            p[1] = ((y * 255 / down + n) % 256) as u8;
            p[2] = ((tint + (x + y) / 2 + n) % 256) as u8;
        }
    }
    let mut out = Vec::with_capacity(w * h * 3 / 2);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder
        .write_header()
        .expect("writing a PNG header to memory cannot fail");
    writer
        .write_image_data(&pixels)
        .expect("the pixel buffer has the header's size");
    writer
        .finish()
        .expect("finishing a PNG in memory cannot fail");
    out
}

/// One uploaded blob: its name and the digest of the bytes that were uploaded.
///
/// ```
/// use scenarios::azure::UploadedBlob;
/// use scenarios::Digest;
/// let b = UploadedBlob { name: "a.png".into(), digest: Digest::of(b"png") };
/// assert_eq!(b.digest.len, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedBlob {
    /// The blob's name in its container.
    pub name: String,
    /// Size and CRC-32 of what was uploaded: what every download must match.
    pub digest: Digest,
}

/// A container the set-up filled: where it is (its URL with a SAS) and what is in it.
///
/// ```
/// use scenarios::azure::{AzureContainer, UploadedBlob};
/// use scenarios::Digest;
/// let c = AzureContainer {
///     url: "http://127.0.0.1:1/devstoreaccount1/bench-harness?sv=1&sig=x".into(),
///     blobs: vec![UploadedBlob { name: "a.png".into(), digest: Digest::of(b"png") }],
/// };
/// let task = c.tasks().next().unwrap();
/// assert_eq!(task.blob, "a.png");
/// assert_eq!(c.to_string(), "http://127.0.0.1:1/devstoreaccount1/bench-harness (1 blobs)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureContainer {
    /// The container's URL, SAS included (`...?sv=...&sig=...`).
    pub url: String,
    /// The blobs, in task order.
    pub blobs: Vec<UploadedBlob>,
}

impl AzureContainer {
    /// One download task per blob, in order.
    ///
    /// ```
    /// let c = scenarios::azure::AzureContainer { url: "http://h/a/c?sig=x".into(), blobs: vec![] };
    /// assert_eq!(c.tasks().count(), 0);
    /// ```
    pub fn tasks(&self) -> impl Iterator<Item = FetchAzureBlob> + '_ {
        self.blobs.iter().map(|b| FetchAzureBlob {
            container_url: self.url.clone(),
            blob: b.name.clone(),
        })
    }

    /// The digest remembered for blob `index` (task order).
    ///
    /// ```
    /// let c = scenarios::azure::AzureContainer { url: String::new(), blobs: vec![] };
    /// assert_eq!(c.expected(0), None);
    /// ```
    pub fn expected(&self, index: usize) -> Option<Digest> {
        self.blobs.get(index).map(|b| b.digest)
    }
}

impl fmt::Display for AzureContainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} blobs)", redact(&self.url), self.blobs.len())
    }
}

/// Uploads `images` PNG images of `width` × `height` ([`png_image`], named by [`image_name`])
/// to `target` and returns the container with each blob's digest. For an account target the
/// container is created first (an existing one is used as it is); existing blobs of the same
/// names are overwritten. Uploads run 16 at a time on a runtime of their own: call it from
/// plain (non-async) code.
///
/// The error says what failed, where (without the SAS), and how: the HTTP status and the
/// service's error code, or the cause.
///
/// ```no_run
/// // Needs a running Azurite (the harness starts one; see bench_harness::azurite).
/// use scenarios::azure::{AzureTarget, upload_images};
/// let target = AzureTarget::emulator("http://127.0.0.1:10000/devstoreaccount1");
/// let container = upload_images(&target, 10, 256, 256).unwrap();
/// assert_eq!(container.blobs.len(), 10);
/// ```
pub fn upload_images(
    target: &AzureTarget,
    images: usize,
    width: u32,
    height: u32,
) -> Result<AzureContainer, String> {
    let url = target.container_url();
    let client = container_client(&url).map_err(|e| e.message().to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime for the upload: {e}"))?;
    runtime.block_on(async {
        if matches!(target, AzureTarget::Account { .. })
            && let Err(e) = client.create(None).await {
                let exists = matches!(e.kind(), ErrorKind::HttpResponse { error_code: Some(code), .. } if code == "ContainerAlreadyExists");
                if !exists {
                    return Err(format!("cannot create {target}: {}", describe(&e)));
                }
            }
        let uploads = (0..images as u64).map(|i| {
            let client = &client;
            async move {
                let name = image_name(i, width, height);
                let bytes = png_image(i, width, height);
                let digest = Digest::of(&bytes);
                client
                    .blob_client(&name)
                    .upload(RequestContent::from(bytes), None)
                    .await
                    .map_err(|e| format!("cannot upload `{name}` to {target}: {}", describe(&e)))?;
                Ok::<_, String>(UploadedBlob { name, digest })
            }
        });
        let blobs: Vec<UploadedBlob> = futures_util::stream::iter(uploads)
            .buffered(UPLOADS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(AzureContainer { url, blobs })
    })
}

/// A client for the container at `container_url` (its SAS in the query), shared (`Arc`) by the
/// downloads that use it, built the way every download builds it: the SDK's own HTTP pipeline
/// (the service version, retries) over reqwest.
/// It fails for a URL that does not parse and, in a build without the `azure-tls` feature, for
/// an `https` one, saying which feature to turn on.
///
/// ```
/// let e = scenarios::azure::container_client("https://acct.blob.core.windows.net/c?sig=x");
/// if !scenarios::azure::TLS {
///     assert!(e.err().unwrap().message().contains("azure-tls"));
/// }
/// assert!(scenarios::azure::container_client("http://127.0.0.1:1/devstoreaccount1/c?sig=x").is_ok());
/// ```
pub fn container_client(container_url: &str) -> Result<Arc<BlobContainerClient>, TaskError> {
    let fail = |why: String| TaskError::msg(format!("container {}: {why}", redact(container_url)));
    let url = Url::parse(container_url).map_err(|e| fail(format!("not a URL: {e}")))?;
    if url.scheme() == "https" && !TLS {
        return Err(fail(
            "https needs TLS, and this build has none: build with the `azure-tls` feature \
             (cargo run --release -p bench-harness --features azure-tls)"
                .into(),
        ));
    }
    let retry = ExponentialRetryOptions {
        initial_delay: azure_core::time::Duration::milliseconds(100),
        max_retries: 3,
        max_total_elapsed: azure_core::time::Duration::seconds(10),
        max_delay: azure_core::time::Duration::seconds(2),
    };
    let options = BlobContainerClientOptions {
        client_options: ClientOptions {
            retry: RetryOptions::exponential(retry),
            ..ClientOptions::default()
        },
        ..BlobContainerClientOptions::default()
    };
    BlobContainerClient::new(url, None, Some(options))
        .map(Arc::new)
        .map_err(|e| fail(describe(&e)))
}

/// An SDK error as one line: the HTTP status and the service's error code where there is a
/// response, then the SDK's message and its causes, with any SAS signature in them blanked out.
fn describe(e: &azure_core::Error) -> String {
    let text = scrub(&chain(e));
    match e.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => {
            let code = error_code.as_deref().unwrap_or("no error code");
            let status = u16::from(*status);
            // The service explains itself in the XML body's <Message>; else the SDK's text.
            let why = xml_message(&text).unwrap_or_else(|| first_line(&text));
            if why.is_empty()
                || why == code
                || why
                    .trim_start_matches(|c: char| c.is_ascii_digit() || c == ':')
                    .trim()
                    .is_empty()
            {
                format!("HTTP {status} {code}")
            } else {
                format!("HTTP {status} {code}: {why}")
            }
        }
        _ => text,
    }
}

/// The first line of the `<Message>` of an Azure Storage error body, if `text` quotes one.
fn xml_message(text: &str) -> Option<&str> {
    let start = text.find("<Message>")? + "<Message>".len();
    let end = text[start..]
        .find("</Message>")
        .map_or(text.len(), |e| start + e);
    Some(first_line(&text[start..end])).filter(|m| !m.is_empty())
}

/// `text` with the value of every `sig=` (a SAS signature, in URLs the SDK quotes) replaced by
/// `REDACTED`.
///
/// ```
/// assert_eq!(
///     scenarios::azure::scrub("GET http://h/c/b?sv=1&sig=abc%2B (x)"),
///     "GET http://h/c/b?sv=1&sig=REDACTED (x)"
/// );
/// ```
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("sig=") {
        out.push_str(&rest[..at + 4]);
        rest = &rest[at + 4..];
        let end = rest
            .find(|c: char| c == '&' || c == ')' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(rest.len());
        if end > 0 {
            out.push_str("REDACTED");
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text).trim()
}

/// Downloads blob `blob` with `client` (see [`container_client`]) and returns the [`Digest`] of
/// its bytes, hashed as they arrive: [`FetchAzureBlob`] for async code (the async backend).
/// Share one client among the downloads of a run: it pools connections.
///
/// The error names the blob and the container (without the SAS) and says what went wrong: a
/// wrong signature is `HTTP 403 AuthorizationFailure`, a missing blob `HTTP 404 BlobNotFound`.
///
/// ```no_run
/// // Needs a container with the blob in it (the harness's set-up makes one).
/// # async fn demo(container_url: &str) -> Result<(), executor_core::TaskError> {
/// let client = scenarios::azure::container_client(container_url)?;
/// let digest = scenarios::azure::fetch_azure_blob(&client, "image-64x64-00000.png").await?;
/// assert_eq!(digest.len as usize, scenarios::azure::png_image(0, 64, 64).len());
/// # Ok(()) }
/// ```
pub async fn fetch_azure_blob(
    client: &BlobContainerClient,
    blob: &str,
) -> Result<Digest, TaskError> {
    download(client, blob).await.map_err(|cause| {
        TaskError::msg(format!(
            "download of blob `{blob}` from {}: {cause}",
            redact(client.url().as_str())
        ))
    })
}

async fn download(client: &BlobContainerClient, blob: &str) -> Result<Digest, String> {
    let response = client
        .blob_client(blob)
        .download(None)
        .await
        .map_err(|e| describe(&e))?;
    let mut body = response.body;
    let mut hasher = crc32fast::Hasher::new();
    let mut received = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| format!("reading the body after {received} bytes: {}", describe(&e)))?;
        hasher.update(&chunk);
        received += chunk.len() as u64;
    }
    Ok(Digest {
        len: received,
        checksum: hasher.finalize(),
    })
}

/// Download one blob with the Azure SDK: the task the thread pool and the process pool run (and
/// the serial baseline). Serde data only: the container's SAS URL and the blob's name.
///
/// A blocking task cannot `.await`, so each thread that runs one keeps a current-thread tokio
/// runtime of its own and drives the SDK's future on it (`block_on`), with one SDK client per
/// container, kept for the thread's life so that connections are reused. Per thread rather
/// than one runtime per process: the pool's thread itself does the I/O, as a blocking client
/// would (one request in flight per worker, which is what `max_workers` means on these
/// backends), no runtime threads compete with the pool's for the cores, and a connection is
/// only ever used by the runtime that opened it. A process-pool worker runs its tasks on one
/// thread, so there it is one runtime per process. Both go away with their thread.
///
/// It is a [`RemoteTask`] registered as `"scenarios::fetch_azure_blob"`.
///
/// ```no_run
/// // Needs a container with the blob in it (the harness's set-up makes one).
/// use executor_core::Task;
/// use scenarios::azure::FetchAzureBlob;
/// let task = FetchAzureBlob {
///     container_url: "http://127.0.0.1:10000/devstoreaccount1/bench-harness?sv=...&sig=...".into(),
///     blob: "image-64x64-00000.png".into(),
/// };
/// let digest = task.run().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchAzureBlob {
    /// The container's URL with a SAS that allows reading.
    pub container_url: String,
    /// The blob's name in the container.
    pub blob: String,
}

impl FetchAzureBlob {
    /// The blob's own URL, SAS included: what a plain HTTP client (CPython's urllib) GETs.
    ///
    /// ```
    /// let t = scenarios::azure::FetchAzureBlob {
    ///     container_url: "http://127.0.0.1:1/devstoreaccount1/c?sv=1&sig=a%2Bb".into(),
    ///     blob: "image-8x8-00001.png".into(),
    /// };
    /// assert_eq!(t.blob_url(), "http://127.0.0.1:1/devstoreaccount1/c/image-8x8-00001.png?sv=1&sig=a%2Bb");
    /// ```
    pub fn blob_url(&self) -> String {
        let (base, query) = self
            .container_url
            .split_once('?')
            .map_or((self.container_url.as_str(), None), |(b, q)| (b, Some(q)));
        let encoded: String =
            url::form_urlencoded::byte_serialize(self.blob.as_bytes()).collect::<String>();
        let path = format!(
            "{}/{}",
            base.trim_end_matches('/'),
            encoded.replace('+', "%20")
        );
        match query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        }
    }
}

/// The most SDK clients (one per container URL) a thread keeps for [`FetchAzureBlob`].
const MAX_CLIENTS_PER_THREAD: usize = 4;

/// A thread's runtime and clients for [`FetchAzureBlob`].
struct Local {
    runtime: tokio::runtime::Runtime,
    clients: HashMap<String, Arc<BlobContainerClient>>,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

impl Task for FetchAzureBlob {
    type Output = Digest;

    fn run(self) -> Result<Digest, TaskError> {
        LOCAL.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| TaskError::msg(format!("cannot start a tokio runtime: {e}")))?;
                *slot = Some(Local {
                    runtime,
                    clients: HashMap::new(),
                });
            }
            let local = slot.as_mut().expect("set above");
            let client = match local.clients.get(&self.container_url) {
                Some(client) => client.clone(),
                None => {
                    let client = container_client(&self.container_url)?;
                    // A new container URL (a new set-up, a new SAS) retires the old clients:
                    // a long-lived thread (the serial baseline's) keeps only a few.
                    if local.clients.len() >= MAX_CLIENTS_PER_THREAD {
                        local.clients.clear();
                    }
                    local
                        .clients
                        .insert(self.container_url.clone(), client.clone());
                    client
                }
            };
            local
                .runtime
                .block_on(fetch_azure_blob(&client, &self.blob))
        })
    }

    fn name(&self) -> &'static str {
        <Self as RemoteTask>::NAME
    }
}

impl RemoteTask for FetchAzureBlob {
    const NAME: &'static str = "scenarios::fetch_azure_blob";
}

backend_process::register!(FetchAzureBlob);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_an_independent_implementation() {
        // Node's crypto.createHmac("sha256", Buffer.from(EMULATOR_KEY, "base64")) over the same
        // string-to-sign (as Azurite 3.35's generateAccountSASSignature20201206 builds it).
        let s = account_sas_string_to_sign(
            EMULATOR_ACCOUNT,
            "rwdlac",
            "b",
            "sco",
            "2030-01-01T00:00:00Z",
            "https,http",
            SAS_VERSION,
        );
        assert_eq!(SharedKey::emulator().sign(&s), PINNED_SIGNATURE);
    }

    const PINNED_SIGNATURE: &str = "8wjnWxP8F5T/UlX9mpdTCIE1FcMiFLJkQG7OPybci4k=";

    #[test]
    fn the_sas_query_carries_every_signed_field() {
        let sas = SharedKey::emulator().account_sas_until("2030-01-01T00:00:00Z");
        let pairs: HashMap<String, String> = url::form_urlencoded::parse(sas.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(pairs["sv"], SAS_VERSION);
        assert_eq!(pairs["ss"], "b");
        assert_eq!(pairs["srt"], "sco");
        assert_eq!(pairs["sp"], "rwdlac");
        assert_eq!(pairs["se"], "2030-01-01T00:00:00Z");
        assert_eq!(pairs["spr"], "https,http");
        assert_eq!(pairs["sig"], PINNED_SIGNATURE);
    }

    #[test]
    fn sas_time_is_utc_whole_seconds() {
        let t = time::OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap()
            + Duration::from_millis(999);
        assert_eq!(sas_time(t), "2030-01-01T00:00:00Z");
    }

    #[test]
    fn connection_strings() {
        let t = AzureTarget::from_connection_string(
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;SharedAccessSignature=?sv=1&sig=x",
        )
        .unwrap();
        assert_eq!(
            t,
            AzureTarget::Account {
                blob_endpoint: "http://127.0.0.1:10000/devstoreaccount1".into(),
                sas: "sv=1&sig=x".into(),
                container: CONTAINER.into(),
            }
        );
        let t = AzureTarget::from_connection_string(&format!(
            "AccountName={EMULATOR_ACCOUNT};AccountKey={EMULATOR_KEY};BlobEndpoint=http://127.0.0.1:9/{EMULATOR_ACCOUNT}"
        ))
        .unwrap();
        let AzureTarget::Account { sas, .. } = &t else {
            panic!("{t:?}")
        };
        assert!(sas.contains("sig="), "{sas}");
        assert!(!t.is_https());
        let t =
            AzureTarget::from_connection_string("AccountName=acct;AccountKey=c2VjcmV0").unwrap();
        assert!(t.is_https());
        assert!(
            AzureTarget::from_connection_string("AccountName=acct;AccountKey=!!")
                .unwrap_err()
                .contains("base64")
        );
        assert!(
            AzureTarget::from_connection_string("garbage")
                .unwrap_err()
                .contains("key=value")
        );
    }

    #[test]
    fn service_messages_are_taken_from_the_xml_body() {
        let body = "403: <?xml version=\"1.0\"?>\n<Error>\n  <Code>AuthorizationFailure</Code>\n  <Message>Server failed to authenticate the request.\nRequestId:1</Message>\n</Error>";
        assert_eq!(
            xml_message(body),
            Some("Server failed to authenticate the request.")
        );
        assert_eq!(xml_message("HTTP 500"), None);
    }

    #[test]
    fn messages_never_show_the_sas() {
        let t = AzureTarget::from_container_sas_url(
            "https://a.blob.core.windows.net/c?sv=1&sig=SECRET",
        )
        .unwrap();
        assert!(!t.to_string().contains("SECRET"));
        assert!(!format!("{:?}", SharedKey::emulator()).contains(EMULATOR_KEY));
        let e = container_client("ftp://h/c?sig=SECRET")
            .err()
            .map(|e| e.message().to_string())
            .unwrap_or_default();
        assert!(!e.contains("SECRET"), "{e}");
    }

    #[test]
    fn images_are_pinned() {
        // The set-up's images are part of the scenarios' expectations (`verified_bytes`): a
        // change here (another PNG encoder, another generator) changes those too.
        let d = Digest::of(&png_image(0, 64, 64));
        assert_eq!(d, PINNED_IMAGE);
        for i in 0..20 {
            let bytes = png_image(i, 17, 5);
            assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        }
    }

    const PINNED_IMAGE: Digest = Digest {
        len: 10_736,
        checksum: 0xf60f_7e0e,
    };

    #[test]
    fn images_decode_to_their_size_and_differ_by_index() {
        let bytes = png_image(5, 40, 30);
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (40, 30));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.buffer_size(), 40 * 30 * 3);
        let digests: std::collections::HashSet<_> =
            (0..50).map(|i| Digest::of(&png_image(i, 16, 16))).collect();
        assert_eq!(digests.len(), 50);
    }

    #[test]
    fn the_task_is_named_for_the_process_pool() {
        assert_eq!(FetchAzureBlob::NAME, "scenarios::fetch_azure_blob");
        let t = FetchAzureBlob {
            container_url: String::new(),
            blob: String::new(),
        };
        assert_eq!(t.name(), "scenarios::fetch_azure_blob");
    }

    #[test]
    fn a_task_on_an_unreachable_account_fails_naming_the_blob_and_its_thread_exits_cleanly() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sas = SharedKey::emulator().account_sas(Duration::from_secs(60));
        let url = format!(
            "http://{}/{EMULATOR_ACCOUNT}/c?{sas}",
            listener.local_addr().unwrap(),
        );
        drop(listener);
        let e = std::thread::spawn(move || {
            FetchAzureBlob {
                container_url: url,
                blob: "x.png".into(),
            }
            .run()
            .unwrap_err()
        })
        .join()
        .expect("the thread, its runtime and its clients end without a panic");
        let message = e.message();
        assert!(
            message.starts_with("download of blob `x.png` from http://127.0.0.1:"),
            "{e}"
        );
        let signature = sas.rsplit_once("sig=").unwrap().1;
        assert!(!message.contains(signature), "the SAS leaks: {e}");
    }
}
