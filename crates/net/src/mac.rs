//! [`Mac`]: an Ethernet address, parsed and printed one way for the whole
//! system. The server normalises `mac_address` with it, the agent reads the
//! feed's MACs with it, and the DHCP server and the firewall print it.

use std::fmt;
use std::str::FromStr;

/// A 48-bit Ethernet (EUI-48) address.
///
/// Text form: six two-digit hex octets separated all by `:` or all by `-`,
/// in any case (`FA-16-3E-00-00-01`, `fa:16:3e:00:00:01`); it prints as
/// lowercase with `:` (Neutron's normal form).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mac([u8; 6]);

/// Text that is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacError {
    input: String,
}

impl MacError {
    /// The rejected text.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for MacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not a MAC address (six hex octets separated by ':' or '-')",
            self.input
        )
    }
}

impl std::error::Error for MacError {}

impl Mac {
    /// `00:00:00:00:00:00`. In a VXLAN FDB it is the entry that carries
    /// broadcast, unknown-unicast and multicast traffic to a remote VTEP.
    pub const ZERO: Mac = Mac([0; 6]);
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    pub const fn new(octets: [u8; 6]) -> Mac {
        Mac(octets)
    }

    /// The six octets, first on the wire first.
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Parses the text form (see the type's documentation).
    pub fn parse(s: &str) -> Result<Mac, MacError> {
        let err = || MacError {
            input: s.to_owned(),
        };
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut octets = [0u8; 6];
        let mut parts = s.split(sep);
        for octet in &mut octets {
            let part = parts.next().ok_or_else(err)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(Mac(octets))
    }

    pub const fn is_zero(&self) -> bool {
        matches!(self.0, [0, 0, 0, 0, 0, 0])
    }

    pub const fn is_broadcast(&self) -> bool {
        matches!(self.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    }

    /// The group bit (0x01 of the first octet) is set: multicast or
    /// broadcast, never a port's own address.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// The locally administered bit (0x02 of the first octet) is set.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// The modified EUI-64 interface identifier (RFC 4291 appendix A): the
    /// universal/local bit flipped and `ff:fe` inserted in the middle. It is
    /// the low 64 bits of the SLAAC and link-local addresses of this MAC.
    pub const fn eui64_interface_id(&self) -> u64 {
        let m = self.0;
        u64::from_be_bytes([m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]])
    }
}

impl FromStr for Mac {
    type Err = MacError;

    fn from_str(s: &str) -> Result<Mac, MacError> {
        Mac::parse(s)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl From<[u8; 6]> for Mac {
    fn from(octets: [u8; 6]) -> Mac {
        Mac(octets)
    }
}

/// Exactly six bytes (a netlink attribute, the head of a DHCP `chaddr`).
impl TryFrom<&[u8]> for Mac {
    type Error = std::array::TryFromSliceError;

    fn try_from(bytes: &[u8]) -> Result<Mac, Self::Error> {
        <[u8; 6]>::try_from(bytes).map(Mac)
    }
}

impl From<Mac> for [u8; 6] {
    fn from(mac: Mac) -> [u8; 6] {
        mac.0
    }
}

impl AsRef<[u8]> for Mac {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Mac::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FA: Mac = Mac::new([0xfa, 0x16, 0x3e, 0x12, 0x34, 0x56]);

    #[test]
    fn parses_both_separators_any_case() {
        assert_eq!("fa:16:3e:12:34:56".parse(), Ok(FA));
        assert_eq!("FA-16-3E-12-34-56".parse(), Ok(FA));
        assert_eq!("Fa:16:3E:12:34:56".parse(), Ok(FA));
    }

    #[test]
    fn prints_lowercase_colons_and_round_trips() {
        assert_eq!(FA.to_string(), "fa:16:3e:12:34:56");
        assert_eq!(
            Mac::new([0, 0xa, 0, 0, 0, 0xff]).to_string(),
            "00:0a:00:00:00:ff"
        );
        assert_eq!(format!("{FA:?}"), "Mac(fa:16:3e:12:34:56)");
        for text in [
            "00:00:00:00:00:00",
            "ff:ff:ff:ff:ff:ff",
            "02:00:5e:10:00:01",
        ] {
            let m: Mac = text.parse().unwrap();
            assert_eq!(m.to_string(), text);
            assert_eq!(Mac::from(m.octets()), m);
        }
        assert_eq!(
            "FA-16-3E-12-34-56".parse::<Mac>().unwrap().to_string(),
            "fa:16:3e:12:34:56"
        );
    }

    #[test]
    fn refuses_anything_else_with_the_input_named() {
        for bad in [
            "",
            ":",
            "fa:16:3e:12:34",
            "fa:16:3e:12:34:56:78",
            "fa:16:3e:12:34:5",
            "fa:16:3e:12:34:056",
            "fa:16:3e-12:34:56",
            "fa:16:3e:12:34:5g",
            "+a:16:3e:12:34:56",
            "fa:16:3e:12:34:56:",
            " fa:16:3e:12:34:56",
            "fa16.3e12.3456",
            "fa:16:3e:12:34:5é",
            "é:16:3e:12:34:56",
        ] {
            let err = bad.parse::<Mac>().unwrap_err();
            assert_eq!(err.input(), bad);
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn classification() {
        assert!(Mac::ZERO.is_zero() && !Mac::ZERO.is_multicast());
        assert!(Mac::BROADCAST.is_broadcast() && Mac::BROADCAST.is_multicast());
        assert!(Mac::new([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!FA.is_zero() && !FA.is_broadcast() && !FA.is_multicast());
        assert!(FA.is_local());
        assert!(!Mac::new([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]).is_local());
    }

    #[test]
    fn eui64_flips_the_universal_local_bit() {
        assert_eq!(FA.eui64_interface_id(), 0xf816_3eff_fe12_3456);
        assert_eq!(
            Mac::new([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]).eui64_interface_id(),
            0x0211_22ff_fe33_4455
        );
    }

    #[test]
    fn from_exactly_six_bytes() {
        let chaddr = [0xfa, 0x16, 0x3e, 0x12, 0x34, 0x56, 0, 0, 0, 0];
        assert_eq!(Mac::try_from(&chaddr[..6]).ok(), Some(FA));
        assert!(Mac::try_from(&chaddr[..]).is_err());
        assert!(Mac::try_from(&chaddr[..5]).is_err());
        assert!(Mac::try_from(&[][..]).is_err());
        assert_eq!(FA.as_ref(), &chaddr[..6]);
        assert_eq!(FA.as_bytes(), &[0xfa, 0x16, 0x3e, 0x12, 0x34, 0x56]);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_as_a_string() {
        assert_eq!(serde_json::to_string(&FA).unwrap(), "\"fa:16:3e:12:34:56\"");
        assert_eq!(
            serde_json::from_str::<Mac>("\"FA-16-3E-12-34-56\"").unwrap(),
            FA
        );
        let err = serde_json::from_str::<Mac>("\"fa:16\"").unwrap_err();
        assert!(
            err.to_string().contains("'fa:16' is not a MAC address"),
            "{err}"
        );
        assert!(serde_json::from_str::<Mac>("12").is_err());
    }
}
