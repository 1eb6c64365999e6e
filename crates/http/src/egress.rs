//! Where the server may connect to on a client's behalf: the webhooks' guard against
//! server-side request forgery.
//!
//! A webhook URL is typed by a merchant key, so it must never make the server post to its own
//! machine, its private network or a cloud's instance-metadata service. The rule:
//! - an address is refused unless it is public: every range of IANA's IPv4 and IPv6
//!   special-purpose registries that is not globally reachable, multicast, the reserved and
//!   broadcast blocks, IPv6 outside global unicast (`2000::/3`), and the cloud metadata
//!   addresses that sit in public space (Azure's 168.63.129.16); an IPv4-mapped or NAT64 IPv6
//!   address is judged by the IPv4 address inside it, and IPv4-compatible IPv6 (deprecated) is
//!   refused outright;
//! - a name is resolved at each delivery, by [`GuardedResolver`], which hands the HTTP client
//!   only the addresses it checked, so the connection goes to an address that passed (a DNS
//!   answer that changes between check and connect, DNS rebinding, changes nothing); if any of
//!   a name's addresses is refused, the whole name is;
//! - a literal address in the URL never reaches a resolver, so [`AddressPolicy::check_url`]
//!   judges it before each delivery and at the subscription's creation;
//! - redirects are never followed and proxies from the environment are ignored (the client is
//!   built with both off in `webhooks.rs`);
//! - the operator allows named ranges, and only those, with `[webhooks] allow_ranges`.
//!
//! The ranges are `ipnet` networks (the crate reqwest itself uses for its no-proxy lists),
//! written out from the registries below rather than a hand-rolled bit test per range:
//! <https://www.iana.org/assignments/iana-ipv4-special-registry/> and
//! <https://www.iana.org/assignments/iana-ipv6-special-registry/>.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::LazyLock;

/// IPv4 ranges that are not public: IANA's special-purpose registry entries not globally
/// reachable, plus multicast (224/4) and the metadata address outside them.
const IPV4_REFUSED: &[&str] = &[
    "0.0.0.0/8",        // "this network" (0.0.0.0 connects to the host itself)
    "10.0.0.0/8",       // private (RFC 1918)
    "100.64.0.0/10",    // shared address space (RFC 6598): Alibaba Cloud's 100.100.100.200 metadata
    "127.0.0.0/8",      // loopback
    "169.254.0.0/16",   // link-local: AWS, GCP, Azure and OpenStack metadata at 169.254.169.254
    "172.16.0.0/12",    // private
    "192.0.0.0/24",     // IETF protocol assignments (Oracle Cloud's 192.0.0.192 metadata)
    "192.0.2.0/24",     // documentation (TEST-NET-1)
    "192.88.99.0/24",   // 6to4 relay anycast (deprecated)
    "192.168.0.0/16",   // private
    "198.18.0.0/15",    // benchmarking
    "198.51.100.0/24",  // documentation (TEST-NET-2)
    "203.0.113.0/24",   // documentation (TEST-NET-3)
    "224.0.0.0/4",      // multicast
    "240.0.0.0/4",      // reserved, and 255.255.255.255 broadcast
    "168.63.129.16/32", // Azure's wire server (metadata and health, on a public address)
];

/// IPv6 ranges that are not public, within global unicast (everything outside `2000::/3` is
/// refused anyway: loopback, unspecified, unique-local, link-local, site-local, multicast).
const IPV6_REFUSED: &[&str] = &[
    "2001::/23",     // IETF protocol assignments (Teredo, benchmarking, ORCHID...)
    "2001:db8::/32", // documentation
    "2002::/16",     // 6to4: carries an IPv4 address of any kind
    "3fff::/20",     // documentation
];

/// Global unicast IPv6: the only block public addresses are assigned from.
const IPV6_GLOBAL_UNICAST: &str = "2000::/3";
/// NAT64's well-known prefix (RFC 6052): the IPv4 address inside is what is reached.
const IPV6_NAT64: &str = "64:ff9b::/96";

struct Ranges {
    v4: Vec<Ipv4Net>,
    v6: Vec<Ipv6Net>,
    global_unicast: Ipv6Net,
    nat64: Ipv6Net,
}

static RANGES: LazyLock<Ranges> = LazyLock::new(|| Ranges {
    v4: IPV4_REFUSED.iter().map(|r| r.parse().expect("a valid IPv4 range")).collect(),
    v6: IPV6_REFUSED.iter().map(|r| r.parse().expect("a valid IPv6 range")).collect(),
    global_unicast: IPV6_GLOBAL_UNICAST.parse().expect("a valid IPv6 range"),
    nat64: IPV6_NAT64.parse().expect("a valid IPv6 range"),
});

/// Why an address may not be connected to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} is not a public address (loopback, private, link-local, metadata or reserved); the operator allows ranges with [webhooks] allow_ranges")]
    NotPublic(IpAddr),
    #[error("the URL has no host")]
    NoHost,
    #[error("{host} does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
}

/// Which addresses outbound connections may reach: public ones, and the operator's ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Ranges the operator allows although they are not public (a webhook receiver on the
    /// private network, say).
    pub allow: Vec<IpNet>,
}

impl AddressPolicy {
    /// Whether `ip` may be connected to.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow.iter().any(|net| net.contains(&ip)) || is_public(ip) {
            Ok(())
        } else {
            Err(Refusal::NotPublic(ip))
        }
    }

    /// Judges a URL's literal address (a name is judged by [`GuardedResolver`] at delivery).
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refusal> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(Refusal::NoHost),
        }
    }

    /// All of `addresses`, if each is allowed; refused if any is (a name with one private
    /// address among public ones is refused: which one a client picks is not ours to choose).
    pub fn check_all(&self, addresses: &[SocketAddr]) -> Result<(), Refusal> {
        addresses.iter().try_for_each(|a| self.check(a.ip()))
    }
}

/// Whether `ip` is a public unicast address, by the registries above.
pub fn is_public(ip: IpAddr) -> bool {
    let ranges = &*RANGES;
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            if ranges.nat64.contains(&v6) {
                let [.., a, b, c, d] = v6.octets();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            ranges.global_unicast.contains(&v6) && !ranges.v6.iter().any(|net| net.contains(&v6))
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !RANGES.v4.iter().any(|net| net.contains(&ip))
}

/// How names are turned into addresses: the system's resolver, or a fixed answer in tests.
pub type Lookup =
    Arc<dyn Fn(String) -> futures::future::BoxFuture<'static, std::io::Result<Vec<IpAddr>>> + Send + Sync>;

/// The system's resolver (getaddrinfo, on tokio's blocking pool).
pub fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(found.map(|a| a.ip()).collect())
        })
    })
}

/// A resolver for the HTTP client that answers only with addresses the policy allows, so the
/// client connects to exactly what was checked.
#[derive(Clone)]
pub struct GuardedResolver {
    pub policy: AddressPolicy,
    pub lookup: Lookup,
}

impl GuardedResolver {
    /// The addresses of `host`, each allowed, or why not.
    pub async fn resolve_checked(&self, host: &str) -> Result<Vec<SocketAddr>, Refusal> {
        let unresolved = |reason: String| Refusal::Unresolved { host: host.to_owned(), reason };
        let ips = (self.lookup)(host.to_owned()).await.map_err(|e| unresolved(e.to_string()))?;
        if ips.is_empty() {
            return Err(unresolved("no addresses".into()));
        }
        let addresses: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
        self.policy.check_all(&addresses)?;
        Ok(addresses)
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addresses = this.resolve_checked(name.as_str()).await?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        AddressPolicy::default().check(ip.parse().unwrap()).is_err()
    }

    #[test]
    fn webhooks_reach_the_inside_of_the_network_ssrf_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.100.100.200", // Alibaba Cloud metadata
            "169.254.169.254", // AWS/GCP/Azure metadata
            "168.63.129.16",   // Azure wire server
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.192", // Oracle Cloud metadata
            "192.168.1.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:0.0.0.0",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:100.100.100.200",
            "::127.0.0.1", // IPv4-compatible (deprecated)
            "::8.8.8.8",
            "64:ff9b::7f00:1", // NAT64 of 127.0.0.1
            "fc00::1",
            "fd00:ec2::254", // AWS's IPv6 metadata
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2002:7f00:1::1", // 6to4 of 127.0.0.1
            "2001::1",        // Teredo
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2606:4700::1111",
        ] {
            assert!(!refused(ip), "{ip} is public");
        }
    }

    #[test]
    fn the_operator_allows_named_ranges_and_only_those() {
        let policy = AddressPolicy { allow: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()] };
        assert!(policy.check("10.9.8.7".parse().unwrap()).is_ok());
        assert!(policy.check("::1".parse().unwrap()).is_ok());
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_err());
        assert!(policy.check("192.168.0.1".parse().unwrap()).is_err());
    }

    #[test]
    fn literal_hosts_in_urls_are_judged() {
        let policy = AddressPolicy::default();
        let check = |u: &str| policy.check_url(&url::Url::parse(u).unwrap());
        assert!(check("http://[::ffff:0.0.0.0]:8011/").is_err());
        assert!(check("http://100.100.100.200/latest/meta-data/").is_err());
        assert!(check("http://0x7f.1/").is_err(), "a hex spelling parses as 127.0.0.1");
        assert!(check("http://2130706433/").is_err(), "a decimal spelling parses as 127.0.0.1");
        assert!(check("https://hooks.example.com/x").is_ok(), "names are judged at delivery");
        assert!(check("http://93.184.216.34/").is_ok());
    }

    #[tokio::test]
    async fn a_name_is_refused_if_any_of_its_addresses_is() {
        let fixed = |ips: Vec<IpAddr>| -> Lookup {
            Arc::new(move |_| {
                let ips = ips.clone();
                Box::pin(async move { Ok(ips) })
            })
        };
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let resolver =
            GuardedResolver { policy: AddressPolicy::default(), lookup: fixed(vec![public, local]) };
        assert_eq!(resolver.resolve_checked("x.test").await, Err(Refusal::NotPublic(local)));
        let resolver = GuardedResolver { policy: AddressPolicy::default(), lookup: fixed(vec![public]) };
        assert_eq!(resolver.resolve_checked("x.test").await.unwrap(), vec![SocketAddr::new(public, 0)]);
        let resolver = GuardedResolver { policy: AddressPolicy::default(), lookup: fixed(vec![]) };
        assert!(matches!(resolver.resolve_checked("x.test").await, Err(Refusal::Unresolved { .. })));
    }
}
