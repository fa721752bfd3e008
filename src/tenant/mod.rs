//! Tenants: the municipalities one gateway answers for. A call belongs to the tenant
//! whose number was dialled (the INVITE's Request-URI user, else its To user) or, when
//! no number matches, whose SIP domain it was sent to (the Request-URI's host). Each
//! tenant has its own language, knowledge base (merged over the shared base, see
//! [`kb`]), prompts and greeting, queues and opening hours, and SMS sender; everything
//! else (the SIP stack, the recognizer, the voices, the records) is shared.
//!
//! A config without `[[tenants]]` has one implicit tenant, `default`, which is exactly
//! the single municipality of before. A call that matches no tenant goes to the first
//! one (the first `[[tenants]]` entry), and the log names the number, so a line that was
//! forgotten in the config is found, not dropped.
//!
//! This module only decides and merges; the call layer builds each tenant's running
//! pieces from a [`TenantConfig`] and picks them per call with [`Tenants::pick`].

use std::collections::HashMap;

pub mod config;
pub mod kb;
pub mod number;

pub use config::{TenantConfig, DEFAULT_TENANT};
pub use number::normalise;

/// What the INVITE says about where it was going.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dialled<'a> {
    /// The Request-URI's user part.
    pub user: &'a str,
    /// The To header's user part, if any (a proxy may have rewritten the Request-URI).
    pub to_user: Option<&'a str>,
    /// The Request-URI's host.
    pub domain: &'a str,
}

/// How a call was matched to its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    Number,
    Domain,
    /// Nothing matched: the first tenant took it.
    Fallback,
}

/// The tenants' running pieces `T`, in config order, and how calls find theirs.
pub struct Tenants<T> {
    each: Vec<(String, T)>,
    numbers: HashMap<String, usize>,
    domains: HashMap<String, usize>,
}

impl<T> Tenants<T> {
    /// `each` pairs a tenant's config with its pieces; it must not be empty (a config
    /// always has at least the implicit tenant). Numbers and domains were checked to
    /// be unique by [`config::check`]; a repeat here goes to the first tenant.
    pub fn new(each: Vec<(&TenantConfig, T)>) -> Tenants<T> {
        assert!(!each.is_empty(), "there is always at least one tenant");
        let mut numbers = HashMap::new();
        let mut domains = HashMap::new();
        for (i, (config, _)) in each.iter().enumerate() {
            for n in &config.numbers {
                numbers.entry(normalise(n)).or_insert(i);
            }
            for d in &config.domains {
                domains.entry(d.trim().to_ascii_lowercase()).or_insert(i);
            }
        }
        Tenants {
            each: each.into_iter().map(|(c, t)| (c.name.clone(), t)).collect(),
            numbers,
            domains,
        }
    }

    /// The tenant a call dialled this way belongs to, with its name.
    pub fn pick(&self, dialled: &Dialled) -> (&str, &T, Matched) {
        let (index, matched) = self.find(dialled);
        let (name, t) = &self.each[index];
        if matched == Matched::Fallback && self.each.len() > 1 {
            tracing::warn!(number = dialled.user, to = dialled.to_user.unwrap_or(""),
                domain = dialled.domain, tenant = %name,
                "called number matches no tenant: the first tenant takes the call");
        }
        (name, t, matched)
    }

    fn find(&self, dialled: &Dialled) -> (usize, Matched) {
        let by_number = |user: &str| self.numbers.get(&normalise(user)).copied();
        if let Some(i) = by_number(dialled.user).or_else(|| dialled.to_user.and_then(by_number)) {
            return (i, Matched::Number);
        }
        match self
            .domains
            .get(&dialled.domain.trim().to_ascii_lowercase())
        {
            Some(&i) => (i, Matched::Domain),
            None => (0, Matched::Fallback),
        }
    }

    /// The first tenant (web calls, which dial no number, are its).
    pub fn first(&self) -> (&str, &T) {
        let (name, t) = &self.each[0];
        (name, t)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.each.iter().map(|(n, t)| (n.as_str(), t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str, numbers: &[&str], domains: &[&str]) -> TenantConfig {
        TenantConfig {
            name: name.into(),
            numbers: numbers.iter().map(|s| s.to_string()).collect(),
            domains: domains.iter().map(|s| s.to_string()).collect(),
            ..TenantConfig::implicit()
        }
    }

    fn two() -> Tenants<char> {
        let a = tenant("a", &["+45 70 00 00 01"], &["a.example.org"]);
        let b = tenant("b", &["70000002", "bot-b"], &["b.example.org"]);
        Tenants::new(vec![(&a, 'a'), (&b, 'b')])
    }

    fn dialled<'a>(user: &'a str, domain: &'a str) -> Dialled<'a> {
        Dialled {
            user,
            to_user: None,
            domain,
        }
    }

    #[test]
    fn a_call_goes_to_the_tenant_of_its_number_however_written() {
        let t = two();
        for user in ["70000001", "+4570000001", "004570000001", "4570000001"] {
            let (name, _, how) = t.pick(&dialled(user, "gw.example.org"));
            assert_eq!((name, how), ("a", Matched::Number), "{user}");
        }
        // The number wins over the domain.
        let (name, pieces, _) = t.pick(&dialled("+45 70000002", "a.example.org"));
        assert_eq!((name, *pieces), ("b", 'b'));
        assert_eq!(t.pick(&dialled("BOT-B", "x")).0, "b");
    }

    #[test]
    fn the_to_user_and_then_the_domain_are_asked_when_the_uri_user_is_no_tenants() {
        let t = two();
        let proxied = Dialled {
            user: "gw1",
            to_user: Some("+4570000002"),
            domain: "10.0.0.1",
        };
        assert_eq!(t.pick(&proxied).0, "b");
        let (name, _, how) = t.pick(&dialled("bot", "B.Example.org"));
        assert_eq!((name, how), ("b", Matched::Domain));
    }

    #[test]
    fn a_call_that_matches_nothing_goes_to_the_first_tenant() {
        let two = two();
        let (name, pieces, how) = two.pick(&dialled("80808080", "127.0.0.1"));
        assert_eq!((name, *pieces, how), ("a", 'a', Matched::Fallback));
        let implicit = TenantConfig::implicit();
        let one = Tenants::new(vec![(&implicit, ())]);
        assert_eq!(one.pick(&dialled("bot", "127.0.0.1")).0, DEFAULT_TENANT);
    }
}
