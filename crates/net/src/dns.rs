//! DNS names as the API takes them (neutron-lib's `dns` validators): one
//! rule for a label, and from it the checks of a network's or port's
//! `dns_domain` (a FQDN), a port's `dns_name` (a PQDN, or a FQDN inside the
//! configured domain) and a floating IP's `dns_name` (relative only). The
//! built-in DNS and the external DNS drivers build names with [`fqdn`], so
//! the API never accepts a name they could not publish.

use std::fmt;

/// Longest name, trailing dot excluded (neutron-lib's `FQDN_FIELD_SIZE`).
pub const FQDN_MAX: usize = 255;
/// Longest label (RFC 1035).
pub const LABEL_MAX: usize = 63;
/// The domain under which Neutron ignores a port's `dns_name`.
pub const DEFAULT_DOMAIN: &str = "openstacklocal";

/// Why a name is refused; `Display` is neutron-lib's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsNameError {
    /// The shape is wrong: neutron-lib names the name, then the reason.
    Invalid {
        name: String,
        reason: Box<DnsNameError>,
    },
    TooLong {
        name: String,
        max: usize,
    },
    EmptyLabel,
    Hyphen(String),
    BadLabel(String),
    NumericTld(String),
    NotFqdn(String),
    NotRelative(String),
    NoRoomForDomain {
        name: String,
        max: usize,
    },
    NoRoomForSubdomain {
        name: String,
        max: usize,
    },
    PqdnTooLongWithDomain {
        len: usize,
        domain: String,
    },
    OutsideDomain(String),
}

impl fmt::Display for DnsNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DnsNameError as E;
        match self {
            E::Invalid { name, reason } => {
                write!(f, "'{name}' not a valid PQDN or FQDN. Reason: {reason}")
            }
            E::TooLong { name, max } => {
                write!(f, "'{name}' exceeds the {max} character FQDN limit")
            }
            E::EmptyLabel => f.write_str("Encountered an empty component"),
            E::Hyphen(l) => write!(f, "Name '{l}' must not start or end with a hyphen"),
            E::BadLabel(l) => write!(
                f,
                "Name '{l}' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen"
            ),
            E::NumericTld(l) => write!(f, "TLD '{l}' must not be all numeric"),
            E::NotFqdn(d) => write!(f, "'{d}' is not a FQDN"),
            E::NotRelative(n) => write!(f, "'{n}' is a FQDN. It should be a relative domain name"),
            E::NoRoomForDomain { name, max } => write!(
                f,
                "'{name}' contains {} characters. Adding a domain name will cause it to exceed the maximum length of a FQDN of '{max}'",
                name.len()
            ),
            E::NoRoomForSubdomain { name, max } => write!(
                f,
                "'{name}' contains {} characters. Adding a sub-domain will cause it to exceed the maximum length of a FQDN of '{max}'",
                name.len()
            ),
            E::PqdnTooLongWithDomain { len, domain } => write!(
                f,
                "The dns_name passed is a PQDN and its size is '{len}'. The dns_domain option is set to {domain}, with a length of '{}'. When the two are concatenated to form a FQDN (with a '.' at the end), the resulting length exceeds the maximum size of '{FQDN_MAX}'",
                domain.len() + 1
            ),
            E::OutsideDomain(d) => write!(
                f,
                "The dns_name passed is a FQDN. Its higher level labels must be equal to the dns_domain option, that has been set to '{d}'. It must also include one or more valid DNS labels to the left of '{d}'"
            ),
        }
    }
}

impl std::error::Error for DnsNameError {}

/// The shape every name must have (RFC 1123 2.1, RFC 952): labels of
/// letters, digits and inner hyphens, a TLD not all digits. A trailing dot
/// marks a FQDN. The empty name is no name, and passes.
pub fn check_format(name: &str) -> Result<(), DnsNameError> {
    label_rules(name).map_err(|reason| DnsNameError::Invalid {
        name: name.to_string(),
        reason: Box::new(reason),
    })
}

fn label_rules(name: &str) -> Result<(), DnsNameError> {
    if name.is_empty() {
        return Ok(());
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.len() > FQDN_MAX {
        return Err(DnsNameError::TooLong {
            name: trimmed.to_string(),
            max: FQDN_MAX,
        });
    }
    let labels: Vec<&str> = trimmed.split('.').collect();
    for l in &labels {
        if l.is_empty() {
            return Err(DnsNameError::EmptyLabel);
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Err(DnsNameError::Hyphen(l.to_string()));
        }
        if l.len() > LABEL_MAX || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(DnsNameError::BadLabel(l.to_string()));
        }
    }
    if let [_, .., tld] = labels.as_slice()
        && tld.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(DnsNameError::NumericTld(tld.to_string()));
    }
    Ok(())
}

/// A network's or port's `dns_domain`: empty, or a FQDN with room for a
/// host label in front.
pub fn check_domain(domain: &str) -> Result<(), DnsNameError> {
    if domain.is_empty() {
        return Ok(());
    }
    if !domain.ends_with('.') {
        return Err(DnsNameError::NotFqdn(domain.to_string()));
    }
    check_format(domain)?;
    if domain.len() > FQDN_MAX - 2 {
        return Err(DnsNameError::NoRoomForSubdomain {
            name: domain.to_string(),
            max: FQDN_MAX,
        });
    }
    Ok(())
}

/// A floating IP's `dns_name`: relative, with room for a domain.
pub fn check_relative_name(name: &str) -> Result<(), DnsNameError> {
    if name.is_empty() {
        return Ok(());
    }
    if name.ends_with('.') {
        return Err(DnsNameError::NotRelative(name.to_string()));
    }
    check_format(name)?;
    if name.len() > FQDN_MAX - 3 {
        return Err(DnsNameError::NoRoomForDomain {
            name: name.to_string(),
            max: FQDN_MAX,
        });
    }
    Ok(())
}

/// The configured domain as a FQDN (`example.org.`), empty when unset.
pub fn domain_fqdn(configured: &str) -> String {
    match configured {
        "" => String::new(),
        d if d.ends_with('.') => d.to_string(),
        d => format!("{d}."),
    }
}

/// Whether ports' `dns_name`s are taken at all: not under the default
/// domain, as Neutron.
pub fn names_enabled(configured: &str) -> bool {
    let d = domain_fqdn(configured);
    !d.is_empty() && d != format!("{DEFAULT_DOMAIN}.")
}

/// A port's `dns_name` under the configured domain: a PQDN that fits in
/// front of it, or a FQDN inside it.
pub fn check_port_name(name: &str, configured: &str) -> Result<(), DnsNameError> {
    check_format(name)?;
    if name.is_empty() || !names_enabled(configured) {
        return Ok(());
    }
    let domain = domain_fqdn(configured);
    let higher = format!(".{domain}");
    if !name.ends_with('.') {
        if name.len() + higher.len() > FQDN_MAX {
            return Err(DnsNameError::PqdnTooLongWithDomain {
                len: name.len(),
                domain,
            });
        }
        return Ok(());
    }
    if name.len() <= higher.len() || !name.ends_with(&higher) {
        return Err(DnsNameError::OutsideDomain(domain));
    }
    Ok(())
}

/// The FQDN of `name` in `domain` (both as the API holds them): a name with
/// a trailing dot is already one.
pub fn fqdn(name: &str, domain: &str) -> String {
    if name.ends_with('.') {
        return name.to_string();
    }
    let domain = domain_fqdn(domain);
    if domain.is_empty() {
        format!("{name}.")
    } else {
        format!("{name}.{domain}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_letters_digits_and_inner_hyphens() {
        for ok in [
            "",
            "vm1",
            "web-01.example.org.",
            "a.b.c",
            "x1.io",
            "1.example",
        ] {
            assert_eq!(check_format(ok), Ok(()), "{ok}");
        }
        assert_eq!(label_rules("a..b"), Err(DnsNameError::EmptyLabel));
        assert_eq!(label_rules("-a"), Err(DnsNameError::Hyphen("-a".into())));
        assert_eq!(
            label_rules("a_b"),
            Err(DnsNameError::BadLabel("a_b".into()))
        );
        assert_eq!(label_rules("é"), Err(DnsNameError::BadLabel("é".into())));
        assert_eq!(
            label_rules(&"a".repeat(64)),
            Err(DnsNameError::BadLabel("a".repeat(64)))
        );
        assert_eq!(
            label_rules("host.123"),
            Err(DnsNameError::NumericTld("123".into()))
        );
        // A lone all-digit label is no TLD.
        assert_eq!(check_format("123"), Ok(()));
        // The API's words: the name, then why.
        assert_eq!(
            check_format("a..b").unwrap_err().to_string(),
            "'a..b' not a valid PQDN or FQDN. Reason: Encountered an empty component"
        );
        let long = vec!["a".repeat(63); 5].join(".");
        assert!(matches!(
            label_rules(&long),
            Err(DnsNameError::TooLong { .. })
        ));
    }

    #[test]
    fn domains_are_fqdns_with_room_for_a_host() {
        assert_eq!(check_domain("example.org."), Ok(()));
        assert_eq!(check_domain(""), Ok(()));
        assert_eq!(
            check_domain("example.org"),
            Err(DnsNameError::NotFqdn("example.org".into()))
        );
        let d = format!(
            "{}.{}.{}.{}.",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert_eq!(d.len(), 254);
        assert!(matches!(
            check_domain(&d),
            Err(DnsNameError::NoRoomForSubdomain { .. })
        ));
        assert_eq!(
            check_domain("example.org").unwrap_err().to_string(),
            "'example.org' is not a FQDN"
        );
    }

    #[test]
    fn floating_ip_names_are_relative() {
        assert_eq!(check_relative_name("www"), Ok(()));
        assert_eq!(
            check_relative_name("www."),
            Err(DnsNameError::NotRelative("www.".into()))
        );
    }

    #[test]
    fn port_names_fit_the_configured_domain() {
        assert_eq!(check_port_name("vm1", "example.org"), Ok(()));
        assert_eq!(check_port_name("vm1.example.org.", "example.org."), Ok(()));
        assert_eq!(
            check_port_name("vm1.other.org.", "example.org"),
            Err(DnsNameError::OutsideDomain("example.org.".into()))
        );
        assert_eq!(
            check_port_name("example.org.", "example.org"),
            Err(DnsNameError::OutsideDomain("example.org.".into()))
        );
        // Under the default domain names are not taken, so not checked
        // against it (only their shape).
        assert_eq!(check_port_name("vm1.other.org.", "openstacklocal"), Ok(()));
        assert!(check_port_name("bad_name", "openstacklocal").is_err());
        assert!(
            !names_enabled("openstacklocal") && !names_enabled("") && names_enabled("example.org")
        );
    }

    #[test]
    fn fqdns_are_built_once() {
        assert_eq!(fqdn("vm1", "example.org"), "vm1.example.org.");
        assert_eq!(fqdn("vm1", "example.org."), "vm1.example.org.");
        assert_eq!(fqdn("vm1.example.org.", "other."), "vm1.example.org.");
        assert_eq!(fqdn("vm1", ""), "vm1.");
    }
}
