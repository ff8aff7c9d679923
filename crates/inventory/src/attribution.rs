//! Which vendor holds a credential, from what the platforms say about it.
//!
//! Static metadata only: GitHub App slugs, the vendor names people put in token labels and
//! identity names (`zapier-prod`, `snowflake etl`), and the domains of owners' email
//! addresses. Each link carries a confidence and the evidence behind it, so a person can
//! judge it; nothing here is a guess without a stated reason.

use crate::catalogue::{Catalogue, Vendor};
use keywatch_model::inventory::{Credential, CredentialKind};
use std::collections::HashMap;

/// One vendor link of one credential.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    pub vendor_id: String,
    /// 0 to 1: 0.95 for a catalogued id (an app slug), lower for names in free text.
    pub confidence: f64,
    pub evidence: Vec<String>,
}

/// Vendor names shorter than this are not looked for in free text: `box` or `aha` in a
/// label says little.
const MIN_NAME_IN_TEXT: usize = 4;

/// Attributes credentials against one catalogue; builds its name index once, so that a
/// credential costs a lookup per word of its names, not a pass over every vendor.
pub struct Attributor<'c> {
    catalogue: &'c Catalogue,
    /// First word of a vendor name (`snowflake` of "snowflake computing") -> the vendor
    /// index, the name's words and the name as written.
    names: HashMap<String, Vec<(usize, Vec<String>, String)>>,
}

impl<'c> Attributor<'c> {
    pub fn new(catalogue: &'c Catalogue) -> Self {
        let mut names: HashMap<String, Vec<(usize, Vec<String>, String)>> = HashMap::new();
        for (index, vendor) in catalogue.vendors().iter().enumerate() {
            // Vendors with no domain come only from the AWS account list, whose names are
            // often plain words ("Scale", "Make"): in free text they would match anything.
            if vendor.domains.is_empty() {
                continue;
            }
            let all = std::iter::once(&vendor.id).chain(std::iter::once(&vendor.name)).chain(vendor.aliases.iter());
            let mut seen: Vec<Vec<String>> = Vec::new();
            for name in all {
                let name_words = words(name);
                if name_words.concat().len() < MIN_NAME_IN_TEXT || seen.contains(&name_words) {
                    continue;
                }
                seen.push(name_words.clone());
                // Written as one word too: "New Relic" is also `newrelic`.
                let joined = vec![name_words.concat()];
                if name_words.len() > 1 && !seen.contains(&joined) {
                    names.entry(joined[0].clone()).or_default().push((index, joined.clone(), name.clone()));
                    seen.push(joined);
                }
                names.entry(name_words[0].clone()).or_default().push((index, name_words, name.clone()));
            }
        }
        Attributor { catalogue, names }
    }

    /// The catalogue it attributes against (where callers find the vendors' names).
    pub fn catalogue(&self) -> &'c Catalogue {
        self.catalogue
    }

    /// Every vendor `credential` (held by the identity named `identity_name`) can be tied
    /// to, strongest first.
    pub fn attribute(&self, credential: &Credential, identity_name: Option<&str>) -> Vec<Attribution> {
        let mut out: Vec<Attribution> = Vec::new();
        let mut add = |vendor: &Vendor, confidence: f64, evidence: String| match out
            .iter_mut()
            .find(|a| a.vendor_id == vendor.id)
        {
            Some(a) => {
                a.confidence = a.confidence.max(confidence);
                if !a.evidence.contains(&evidence) {
                    a.evidence.push(evidence);
                }
            }
            None => out.push(Attribution { vendor_id: vendor.id.clone(), confidence, evidence: vec![evidence] }),
        };

        let installation = credential.platform == "github" && credential.external_id.starts_with("installation/");
        if let (true, Some(slug)) = (installation, identity_name) {
            if let Some(v) = self.catalogue.by_github_app(slug) {
                add(v, 0.95, format!("GitHub App slug {slug:?} is {}'s app", v.name));
            }
        }
        if credential.platform == "google_workspace" && credential.kind == CredentialKind::OauthGrant {
            if let Some(client) = &credential.identity {
                if let Some(v) = self.catalogue.by_oauth_client_id(client) {
                    add(v, 0.95, format!("OAuth client {client} is {}'s", v.name));
                }
            }
        }
        if let Some(app) = credential
            .identity
            .as_deref()
            .filter(|_| credential.platform == "slack")
            .and_then(|i| i.strip_prefix("app/"))
        {
            if let Some(v) = self.catalogue.by_slack_app(app) {
                add(v, 0.95, format!("Slack app {app} is {}'s", v.name));
            }
        }
        if credential.kind == CredentialKind::RoleTrust {
            let external_id = credential.scopes.iter().any(|s| s == "requires sts:ExternalId");
            for principal in credential.scopes.iter().filter_map(|s| s.strip_prefix("principal:")) {
                let Some(account) = principal.split(':').nth(4) else { continue };
                if let Some(v) = self.catalogue.by_aws_account(account) {
                    let condition =
                        if external_id { ", with an sts:ExternalId condition as vendor integrations use" } else { "" };
                    add(v, 0.9, format!("the role's trust policy lets account {account}, one of {}'s AWS accounts, assume it{condition}", v.name));
                }
            }
        }
        for host in credential.scopes.iter().filter_map(|s| s.strip_prefix("callback:")) {
            if let Some(v) = self.catalogue.by_domain(host) {
                add(v, 0.85, format!("deliveries go to {host}, a domain of {}", v.name));
            }
        }
        let texts = [("identity name", identity_name), ("credential name", Some(credential.name.as_str()))];
        for (what, text) in texts {
            let Some(text) = text else { continue };
            for (v, matched) in self.vendors_named_in(text) {
                add(v, 0.6, format!("{what} {text:?} contains {matched:?}, a name of {}", v.name));
            }
        }
        if let Some(owner) = &credential.owner {
            if let Some((_, domain)) = owner.rsplit_once('@') {
                if let Some(v) = self.catalogue.by_domain(domain) {
                    add(v, 0.8, format!("owner {owner} has an address at {domain}, a domain of {}", v.name));
                }
            }
        }
        out.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then_with(|| a.vendor_id.cmp(&b.vendor_id)));
        out
    }

    /// Vendors whose id, name or alias appears in `text` as whole words (`zapier-prod`,
    /// `Snowflake ETL`, `new_relic_ingest`), with the name that matched.
    fn vendors_named_in(&self, text: &str) -> Vec<(&'c Vendor, String)> {
        let text_words = words(text);
        let mut found: Vec<(&'c Vendor, String)> = Vec::new();
        for (at, word) in text_words.iter().enumerate() {
            let Some(candidates) = self.names.get(word) else { continue };
            for (index, name_words, name) in candidates {
                let vendor = &self.catalogue.vendors()[*index];
                if text_words[at..].starts_with(name_words) && !found.iter().any(|(v, _)| v.id == vendor.id) {
                    found.push((vendor, name.clone()));
                }
            }
        }
        found
    }
}

/// Lower-case alphanumeric words.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// [`Attributor::attribute`] for a single credential.
pub fn attribute(catalogue: &Catalogue, credential: &Credential, identity_name: Option<&str>) -> Vec<Attribution> {
    Attributor::new(catalogue).attribute(credential, identity_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keywatch_model::inventory::{CredentialStatus, Privilege};

    fn credential(platform: &str, external_id: &str, name: &str, owner: Option<&str>) -> Credential {
        Credential {
            platform: platform.into(),
            external_id: external_id.into(),
            kind: CredentialKind::ApiToken,
            name: name.into(),
            identity: None,
            owner: owner.map(str::to_string),
            scopes: vec![],
            privilege: Privilege::Unknown,
            created: None,
            expires: None,
            last_rotated: None,
            last_used: None,
            status: CredentialStatus::Active,
            fingerprint: None,
            match_key: None,
        }
    }

    fn catalogue() -> Catalogue {
        let mut c = Catalogue::builtin().unwrap();
        c.extend_from_str(
            "test",
            r#"
            [[vendor]]
            id = "acme-etl"
            name = "Acme ETL"
            aliases = ["acmeetl"]
            domains = ["acme-etl.example"]
            github_apps = ["acme-etl-app"]
            "#,
        )
        .unwrap();
        c
    }

    #[test]
    fn labels_slugs_and_owner_domains_name_the_vendor_with_evidence() {
        let c = catalogue();
        let by_label = attribute(&c, &credential("atlassian", "t1", "zapier-prod", None), None);
        assert_eq!(by_label[0].vendor_id, "zapier");
        assert!(by_label[0].evidence[0].contains("\"zapier-prod\""), "{by_label:?}");

        let phrase = attribute(&c, &credential("okta", "t2", "Acme ETL nightly", None), None);
        assert_eq!(phrase[0].vendor_id, "acme-etl");

        let slug = attribute(
            &c,
            &credential("github", "installation/7/grant", "x app installation", None),
            Some("acme-etl-app"),
        );
        assert_eq!((slug[0].vendor_id.as_str(), slug[0].confidence), ("acme-etl", 0.95));

        let mut hook = credential("github", "org-webhook/1", "webhook to hooks.zapier.com", None);
        hook.scopes = vec!["callback:hooks.zapier.com".into()];
        let by_callback = attribute(&c, &hook, None);
        assert_eq!((by_callback[0].vendor_id.as_str(), by_callback[0].confidence), ("zapier", 0.85));

        let owner = attribute(&c, &credential("okta", "t3", "nightly", Some("bot@mail.acme-etl.example")), None);
        assert_eq!(owner[0].vendor_id, "acme-etl");
        assert!(owner[0].evidence[0].contains("acme-etl.example"));
    }

    #[test]
    fn words_inside_other_words_and_generic_labels_name_no_vendor() {
        let c = catalogue();
        for label in ["deploy key", "ci", "prod token", "zapierish"] {
            let found = attribute(&c, &credential("github", "k", label, None), None);
            assert!(found.is_empty(), "{label}: {found:?}");
        }
    }
}
