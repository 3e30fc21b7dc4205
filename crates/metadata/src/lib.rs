//! The instance metadata service's server side: what an instance that asks
//! `http://169.254.169.254/...` is told. The host agent's listener finds out
//! where a request came from (the network or router it arrived on, its source
//! address); the server turns that into an [`Instance`] from its model and
//! hands it to a [`Backend`]:
//!
//! - [`tree`] (`builtin`): Neutrino answers the OpenStack and EC2 trees
//!   itself, from what it knows ([`network_data`] for the network layout);
//! - [`proxy`] (`proxy`): the request goes on to Nova's metadata API, signed
//!   as Neutron's metadata agent signs it ([`sign_instance_id`]).
//!
//! Everything but [`proxy`] is pure.

pub mod facts;
pub mod network_data;
pub mod proxy;
pub mod tree;

pub use facts::{Instance, Link, SubnetFacts};
pub use proxy::{NovaProxy, ProxyConfig};

use bytes::Bytes;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// What the instance gets back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl Answer {
    pub fn text(status: u16, body: impl Into<Bytes>) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=UTF-8",
            body: body.into(),
        }
    }

    pub fn json(value: &serde_json::Value) -> Answer {
        Answer {
            status: 200,
            content_type: "application/json",
            body: Bytes::from(value.to_string()),
        }
    }

    pub fn not_found() -> Answer {
        Answer::text(404, "404 Not Found\n\nThe resource could not be found.\n")
    }
}

/// The request as the instance made it (only what a backend may use).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The path, percent-encoded as sent, starting with `/`.
    pub path: String,
    pub query: Option<String>,
    pub body: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
        }
    }
}

/// Which backend answers, from the server's `[metadata]` configuration.
pub enum Backend {
    Builtin,
    Proxy(NovaProxy),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Builtin => "builtin",
            Backend::Proxy(_) => "proxy",
        }
    }

    pub async fn answer(&self, instance: &Instance, req: &Request) -> Answer {
        match self {
            Backend::Builtin => tree::answer(instance, req),
            Backend::Proxy(p) => p.forward(instance, req).await,
        }
    }
}

/// `X-Instance-ID-Signature`: hex HMAC-SHA256 of the instance id under the
/// shared secret, as Neutron's metadata agent computes it and Nova checks.
pub fn sign_instance_id(secret: &str, instance_id: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(instance_id.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_neutrons() {
        // Computed with Python's hmac for Neutron's sign_instance_id and
        // accepted by Nova's metadata handler.
        assert_eq!(
            sign_instance_id("s3cret", "d8e02d56-2648-49a3-bf97-6be8f1204f38"),
            "c616aaf1a4e3cbf2eb9064b9f733a302264ed4c48d599ccaf7080018523cd21b"
        );
    }
}
