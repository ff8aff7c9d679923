//! The vendor catalogue: which company is behind a GitHub App, a Slack app, an Atlassian Connect
//! app, an OAuth client id, an AWS account or a callback domain found in an inventory.
//!
//! Keywatch ships the catalogue as data, embedded at build time:
//!
//! * `data/vendors/catalogue.toml`: hand-kept `[[vendor]]` entries, sorted by id.
//! * `data/vendors/known_aws_accounts.toml`: AWS account ids generated from
//!   fwdcloudsec/known_aws_accounts (Apache-2.0) by `tools/vendors/import_known_aws_accounts.py`.
//!   Each `[[account_owner]]` is merged into the vendor whose id, name or alias matches its
//!   `type` (which names the real owner, e.g. `aws` for AWS services) or else its `name`; owners
//!   the catalogue does not know become vendors of their own, with the slugified name as id.
//!
//! Users add their own vendors with [`Catalogue::extend_from_file`], in the same `[[vendor]]`
//! format. Every identifier (name, alias, domain, app, client id, AWS account) may belong to one
//! vendor only, so that a lookup can never be ambiguous; a file that breaks that rule, or holds
//! malformed values, is rejected whole with an error naming the file and the entry.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

const BUILTIN_CATALOGUE_SOURCE: &str = "data/vendors/catalogue.toml";
const BUILTIN_CATALOGUE: &str = include_str!("../../../data/vendors/catalogue.toml");
const BUILTIN_KNOWN_AWS_ACCOUNTS_SOURCE: &str = "data/vendors/known_aws_accounts.toml";
const BUILTIN_KNOWN_AWS_ACCOUNTS: &str = include_str!("../../../data/vendors/known_aws_accounts.toml");

/// One vendor and everything that identifies it on the platforms Keywatch inventories.
///
/// All lists are optional in a file. `name` may be left out only by an entry that extends a vendor
/// already in the catalogue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vendor {
    /// Lowercase slug (`a-z`, `0-9`, `-`), unique in the catalogue.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Other names and labels people use for the vendor, lowercase.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Registrable domains; a lookup also matches every subdomain.
    #[serde(default)]
    pub domains: Vec<String>,
    /// GitHub App slugs, as in `https://github.com/apps/<slug>`.
    #[serde(default)]
    pub github_apps: Vec<String>,
    /// Slack app ids (`A0...`).
    #[serde(default)]
    pub slack_apps: Vec<String>,
    /// Atlassian Connect app keys.
    #[serde(default)]
    pub atlassian_apps: Vec<String>,
    /// Publicly documented OAuth client ids of the vendor's applications.
    #[serde(default)]
    pub oauth_client_ids: Vec<String>,
    /// 12-digit AWS account ids the vendor uses to reach into customers' accounts.
    #[serde(default)]
    pub aws_accounts: Vec<String>,
    /// CIDRs the vendor publishes for its outbound traffic.
    #[serde(default)]
    pub ip_ranges: Vec<String>,
    /// Substrings seen in the User-Agent of the vendor's API clients.
    #[serde(default)]
    pub user_agents: Vec<String>,
    /// What the vendor does: `ci-cd`, `monitoring`, `identity`, ...
    #[serde(default)]
    pub categories: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VendorFile {
    #[serde(default)]
    vendor: Vec<Vendor>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownAwsAccountsFile {
    #[serde(default)]
    account_owner: Vec<AccountOwner>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountOwner {
    name: String,
    accounts: Vec<String>,
    // Only the owner and its ids matter for attribution; the sources stay in the data file for
    // people checking where an id came from.
    #[serde(default, rename = "sources")]
    _sources: Vec<String>,
    #[serde(default, rename = "type")]
    owner_type: Option<String>,
}

/// Lowercased identifiers mapped to the position of the vendor that owns them.
#[derive(Clone, Debug, Default)]
struct Indexes {
    /// Ids, names and aliases share one namespace so that [`Catalogue::find`] is unambiguous.
    names: HashMap<String, usize>,
    domains: HashMap<String, usize>,
    aws_accounts: HashMap<String, usize>,
    github_apps: HashMap<String, usize>,
    slack_apps: HashMap<String, usize>,
    atlassian_apps: HashMap<String, usize>,
    oauth_client_ids: HashMap<String, usize>,
}

/// The vendor catalogue with its lookup indexes.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    vendors: Vec<Vendor>,
    ids: HashMap<String, usize>,
    indexes: Indexes,
}

impl Catalogue {
    /// The catalogue Keywatch ships: `catalogue.toml` with the known AWS accounts merged in.
    pub fn builtin() -> Result<Catalogue> {
        let mut catalogue = Catalogue::default();
        catalogue.extend_from_str(BUILTIN_CATALOGUE_SOURCE, BUILTIN_CATALOGUE)?;
        catalogue.merge_known_aws_accounts(BUILTIN_KNOWN_AWS_ACCOUNTS_SOURCE, BUILTIN_KNOWN_AWS_ACCOUNTS)?;
        Ok(catalogue)
    }

    /// Adds the `[[vendor]]` entries of a user's TOML file; see [`Catalogue::extend_from_str`].
    pub fn extend_from_file(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read vendor catalogue file", path.display()))?;
        self.extend_from_str(&path.display().to_string(), &text)
    }

    /// Adds the `[[vendor]]` entries of `toml_text`; `source` names it in errors.
    ///
    /// An entry whose id is already in the catalogue extends that vendor: a non-empty `name`
    /// replaces the display name (the old one stays findable as an alias) and every list gains the
    /// entry's values. Any other entry adds a vendor. On error nothing is changed.
    pub fn extend_from_str(&mut self, source: &str, toml_text: &str) -> Result<()> {
        let file: VendorFile =
            toml::from_str(toml_text).with_context(|| format!("{source}: not a valid vendor catalogue file"))?;

        let mut extended = self.clone();
        let mut ids_in_this_file: HashMap<String, usize> = HashMap::new();
        for (index, entry) in file.vendor.into_iter().enumerate() {
            let entry_number = index + 1;
            let description = describe_entry(source, entry_number, &entry.id);
            if let Some(first) = ids_in_this_file.insert(entry.id.trim().to_owned(), entry_number) {
                bail!("{description}: duplicate id, already used by vendor #{first}");
            }
            let is_new = !extended.ids.contains_key(entry.id.trim());
            let vendor = normalise_vendor(entry, is_new).with_context(|| description.clone())?;
            extended.add_or_merge(vendor).with_context(|| description)?;
        }
        *self = extended;
        Ok(())
    }

    /// Looks a vendor up by id, name or alias, ignoring case and repeated whitespace.
    pub fn find(&self, name_or_alias: &str) -> Option<&Vendor> {
        self.vendor_at(self.indexes.names.get(&normalise_name(name_or_alias)))
    }

    /// The vendor owning a 12-digit AWS account id.
    pub fn by_aws_account(&self, account_id: &str) -> Option<&Vendor> {
        self.vendor_at(self.indexes.aws_accounts.get(account_id.trim()))
    }

    /// The vendor behind a GitHub App, by slug or by its bot login (`slug[bot]`).
    pub fn by_github_app(&self, slug_or_bot_login: &str) -> Option<&Vendor> {
        let lowered = slug_or_bot_login.trim().to_ascii_lowercase();
        let slug = lowered.strip_suffix("[bot]").unwrap_or(&lowered);
        self.vendor_at(self.indexes.github_apps.get(slug))
    }

    /// The vendor behind a Slack app id.
    pub fn by_slack_app(&self, app_id: &str) -> Option<&Vendor> {
        self.vendor_at(self.indexes.slack_apps.get(&app_id.trim().to_ascii_lowercase()))
    }

    /// The vendor behind an Atlassian Connect app key.
    pub fn by_atlassian_app(&self, app_key: &str) -> Option<&Vendor> {
        self.vendor_at(self.indexes.atlassian_apps.get(&app_key.trim().to_ascii_lowercase()))
    }

    /// The vendor owning an OAuth client id.
    pub fn by_oauth_client_id(&self, client_id: &str) -> Option<&Vendor> {
        self.vendor_at(self.indexes.oauth_client_ids.get(&client_id.trim().to_ascii_lowercase()))
    }

    /// The vendor owning a host name or any of its parent domains: `hooks.zapier.com` finds the
    /// vendor of `zapier.com`, `notzapier.com` does not. Also accepts a URL or an e-mail address,
    /// whose host part is used.
    pub fn by_domain(&self, host: &str) -> Option<&Vendor> {
        let host = host_part(host)?;
        let mut candidate = host.as_str();
        loop {
            if let Some(position) = self.indexes.domains.get(candidate) {
                return self.vendors.get(*position);
            }
            // Only whole labels are dropped, so a lookalike that merely ends in the same letters
            // never reaches the vendor's domain.
            candidate = candidate.split_once('.')?.1;
        }
    }

    /// Every vendor, in the order they were added.
    pub fn vendors(&self) -> &[Vendor] {
        &self.vendors
    }

    /// Number of vendors.
    pub fn len(&self) -> usize {
        self.vendors.len()
    }

    /// True when the catalogue has no vendor.
    pub fn is_empty(&self) -> bool {
        self.vendors.is_empty()
    }

    fn vendor_at(&self, position: Option<&usize>) -> Option<&Vendor> {
        position.and_then(|position| self.vendors.get(*position))
    }

    fn add_or_merge(&mut self, vendor: Vendor) -> Result<()> {
        let position = match self.ids.get(&vendor.id) {
            Some(&position) => {
                merge_into(&mut self.vendors[position], vendor);
                position
            }
            None => {
                self.ids.insert(vendor.id.clone(), self.vendors.len());
                self.vendors.push(vendor);
                self.vendors.len() - 1
            }
        };
        self.index(position)
    }

    fn index(&mut self, position: usize) -> Result<()> {
        let vendors = &self.vendors;
        let vendor = &vendors[position];
        let claim = |index: &mut HashMap<String, usize>, what: &str, keys: Vec<String>| {
            claim_all(index, what, keys, position, vendors)
        };
        let names = [&vendor.id, &vendor.name].into_iter().chain(&vendor.aliases).map(|name| normalise_name(name));
        let indexes = &mut self.indexes;
        claim(&mut indexes.names, "name or alias", names.collect())?;
        claim(&mut indexes.domains, "domain", vendor.domains.clone())?;
        claim(&mut indexes.aws_accounts, "AWS account", vendor.aws_accounts.clone())?;
        claim(&mut indexes.github_apps, "GitHub App", lowercased(&vendor.github_apps))?;
        claim(&mut indexes.slack_apps, "Slack app", lowercased(&vendor.slack_apps))?;
        claim(&mut indexes.atlassian_apps, "Atlassian app", lowercased(&vendor.atlassian_apps))?;
        claim(&mut indexes.oauth_client_ids, "OAuth client id", lowercased(&vendor.oauth_client_ids))
    }

    fn merge_known_aws_accounts(&mut self, source: &str, toml_text: &str) -> Result<()> {
        let file: KnownAwsAccountsFile =
            toml::from_str(toml_text).with_context(|| format!("{source}: not a valid known AWS accounts file"))?;

        let mut extended = self.clone();
        for (index, owner) in file.account_owner.into_iter().enumerate() {
            let describe = || format!("{source}: account owner #{} ({:?})", index + 1, owner.name);
            extended.merge_account_owner(&owner).with_context(describe)?;
        }
        *self = extended;
        Ok(())
    }

    fn merge_account_owner(&mut self, owner: &AccountOwner) -> Result<()> {
        let name = owner.name.trim();
        let slug = slugify(name);
        let existing = owner
            .owner_type
            .as_deref()
            .and_then(|owner_type| self.indexes.names.get(&normalise_name(owner_type)))
            .or_else(|| self.indexes.names.get(&normalise_name(name)))
            .or_else(|| self.indexes.names.get(&slug))
            .copied();
        let id = match existing {
            Some(position) => self.vendors[position].id.clone(),
            None if slug.is_empty() => bail!("name has no letters or digits to make an id from"),
            None => slug,
        };
        let vendor = Vendor { id, name: name.to_owned(), aws_accounts: owner.accounts.clone(), ..Vendor::default() };
        let is_new = existing.is_none();
        let mut vendor = normalise_vendor(vendor, is_new)?;
        if !is_new {
            // The owner's name is an upstream label (often a product or an AWS service), not a
            // better display name for a vendor the catalogue already describes.
            vendor.name.clear();
        }
        self.add_or_merge(vendor)
    }
}

fn describe_entry(source: &str, entry_number: usize, id: &str) -> String {
    if id.trim().is_empty() {
        format!("{source}: vendor #{entry_number}")
    } else {
        format!("{source}: vendor #{entry_number} (id {:?})", id.trim())
    }
}

/// Records `keys` as belonging to the vendor at `position`; a key that another vendor already
/// owns is an error, since a lookup by it would otherwise depend on load order.
fn claim_all(
    index: &mut HashMap<String, usize>,
    what: &str,
    keys: Vec<String>,
    position: usize,
    vendors: &[Vendor],
) -> Result<()> {
    for key in keys {
        if key.is_empty() {
            continue;
        }
        match index.get(&key) {
            Some(&owner) if owner != position => {
                bail!("{what} {key:?} already belongs to vendor {:?}", vendors[owner].id)
            }
            Some(_) => {}
            None => {
                index.insert(key, position);
            }
        }
    }
    Ok(())
}

fn lowercased(values: &[String]) -> Vec<String> {
    values.iter().map(|value| value.to_ascii_lowercase()).collect()
}

fn merge_into(vendor: &mut Vendor, addition: Vendor) {
    if !addition.name.is_empty() && addition.name != vendor.name {
        let previous_name = std::mem::replace(&mut vendor.name, addition.name);
        append_unique(&mut vendor.aliases, vec![normalise_name(&previous_name)]);
    }
    append_unique(&mut vendor.aliases, addition.aliases);
    append_unique(&mut vendor.domains, addition.domains);
    append_unique(&mut vendor.github_apps, addition.github_apps);
    append_unique(&mut vendor.slack_apps, addition.slack_apps);
    append_unique(&mut vendor.atlassian_apps, addition.atlassian_apps);
    append_unique(&mut vendor.oauth_client_ids, addition.oauth_client_ids);
    append_unique(&mut vendor.aws_accounts, addition.aws_accounts);
    append_unique(&mut vendor.ip_ranges, addition.ip_ranges);
    append_unique(&mut vendor.user_agents, addition.user_agents);
    append_unique(&mut vendor.categories, addition.categories);
}

fn append_unique(list: &mut Vec<String>, additions: Vec<String>) {
    for value in additions {
        if !list.contains(&value) {
            list.push(value);
        }
    }
}

/// Checks one entry and brings its values to the form the indexes use.
fn normalise_vendor(vendor: Vendor, is_new: bool) -> Result<Vendor> {
    let id = vendor.id.trim().to_owned();
    if !is_slug(&id) {
        bail!("id {id:?} must be a lowercase slug: a-z, 0-9 and inner '-'");
    }
    let name = vendor.name.split_whitespace().collect::<Vec<_>>().join(" ");
    if is_new && name.is_empty() {
        bail!("name is empty");
    }
    Ok(Vendor {
        id,
        name,
        aliases: normalise_list("aliases", vendor.aliases, |alias| Ok(normalise_name(alias)))?,
        domains: normalise_list("domains", vendor.domains, normalise_domain)?,
        github_apps: normalise_list("github_apps", vendor.github_apps, normalise_github_app)?,
        slack_apps: normalise_list("slack_apps", vendor.slack_apps, normalise_slack_app)?,
        atlassian_apps: normalise_list("atlassian_apps", vendor.atlassian_apps, no_whitespace)?,
        oauth_client_ids: normalise_list("oauth_client_ids", vendor.oauth_client_ids, no_whitespace)?,
        aws_accounts: normalise_list("aws_accounts", vendor.aws_accounts, normalise_aws_account)?,
        ip_ranges: normalise_list("ip_ranges", vendor.ip_ranges, normalise_cidr)?,
        user_agents: normalise_list("user_agents", vendor.user_agents, |agent| Ok(agent.to_owned()))?,
        categories: normalise_list("categories", vendor.categories, normalise_category)?,
    })
}

fn normalise_list(field: &str, values: Vec<String>, normalise: impl Fn(&str) -> Result<String>) -> Result<Vec<String>> {
    let mut normalised = Vec::with_capacity(values.len());
    for value in values {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            bail!("{field}: empty value");
        }
        let value = normalise(trimmed).map_err(|error| anyhow!("{field}: {error}"))?;
        if !normalised.contains(&value) {
            normalised.push(value);
        }
    }
    Ok(normalised)
}

fn normalise_name(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn normalise_domain(domain: &str) -> Result<String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let valid_label = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
    };
    if labels.len() < 2 || domain.len() > 253 || !labels.iter().all(valid_label) {
        bail!("{domain:?} is not a domain name (expected e.g. \"example.com\", without scheme or path)");
    }
    Ok(domain)
}

fn normalise_github_app(slug: &str) -> Result<String> {
    let slug = slug.to_ascii_lowercase();
    if !slug.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-') {
        bail!("{slug:?} is not a GitHub App slug (a-z, 0-9, '-')");
    }
    Ok(slug)
}

fn normalise_slack_app(app_id: &str) -> Result<String> {
    let app_id = app_id.to_ascii_uppercase();
    if !app_id.starts_with('A') || app_id.len() < 2 || !app_id.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
        bail!("{app_id:?} is not a Slack app id (\"A\" followed by letters and digits)");
    }
    Ok(app_id)
}

fn no_whitespace(value: &str) -> Result<String> {
    if value.chars().any(char::is_whitespace) {
        bail!("{value:?} contains whitespace");
    }
    Ok(value.to_owned())
}

fn normalise_aws_account(account: &str) -> Result<String> {
    if account.len() != 12 || !account.bytes().all(|byte| byte.is_ascii_digit()) {
        bail!("{account:?} is not a 12-digit AWS account id");
    }
    Ok(account.to_owned())
}

/// Parses `address/prefix` and returns it in canonical form. Host bits must be zero: a range
/// written with them set is usually a single address pasted with the wrong prefix.
fn normalise_cidr(cidr: &str) -> Result<String> {
    let invalid = |reason: &dyn Display| anyhow!("{cidr:?} is not a CIDR range: {reason}");
    let (address, prefix) = cidr.split_once('/').ok_or_else(|| invalid(&"missing '/prefix'"))?;
    let address: IpAddr = address.parse().map_err(|error| invalid(&error))?;
    if prefix.is_empty() || !prefix.bytes().all(|byte| byte.is_ascii_digit()) || prefix.len() > 3 {
        return Err(invalid(&"prefix length is not a number"));
    }
    let prefix: u32 = prefix.parse().map_err(|error| invalid(&error))?;
    let host_bits_set = match address {
        IpAddr::V4(v4) => {
            if prefix > 32 {
                return Err(invalid(&"prefix length above 32"));
            }
            u32::from(v4).checked_shl(prefix).unwrap_or(0) != 0
        }
        IpAddr::V6(v6) => {
            if prefix > 128 {
                return Err(invalid(&"prefix length above 128"));
            }
            u128::from(v6).checked_shl(prefix).unwrap_or(0) != 0
        }
    };
    if host_bits_set {
        return Err(invalid(&"bits are set after the prefix"));
    }
    Ok(format!("{address}/{prefix}"))
}

fn normalise_category(category: &str) -> Result<String> {
    let category = category.to_ascii_lowercase();
    if !is_slug(&category) {
        bail!("{category:?} is not a category slug (a-z, 0-9, inner '-')");
    }
    Ok(category)
}

fn is_slug(value: &str) -> bool {
    !value.is_empty()
        && !value.starts_with('-')
        && !value.ends_with('-')
        && value.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

/// Lowercase ASCII letters and digits, every other run of characters turned into one `-`.
fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for character in name.chars() {
        if character.is_ascii_alphanumeric() {
            slug.push(character.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// The lowercase host of a host name, URL or e-mail address; `None` for IP literals and empty
/// input, which no domain can match.
fn host_part(input: &str) -> Option<String> {
    let input = input.trim();
    let after_scheme = input.split_once("://").map_or(input, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or_default();
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if host_and_port.starts_with('[') {
        return None;
    }
    let host = host_and_port.split(':').next().unwrap_or_default().trim_end_matches('.');
    if host.is_empty() || host.parse::<IpAddr>().is_ok() {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Catalogue {
        Catalogue::builtin().expect("the built-in catalogue loads")
    }

    fn id_of(vendor: Option<&Vendor>) -> Option<&str> {
        vendor.map(|vendor| vendor.id.as_str())
    }

    /// A file under the system temp directory, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &str) -> TempFile {
            let path = std::env::temp_dir().join(format!("keywatch-catalogue-{}-{name}", std::process::id()));
            std::fs::write(&path, contents).expect("write temp file");
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn builtin_catalogue_loads_with_enough_vendors() {
        let catalogue = builtin();
        assert!(catalogue.len() >= 150, "only {} vendors", catalogue.len());
        assert_eq!(catalogue.len(), catalogue.vendors().len());
        assert!(!catalogue.is_empty());
    }

    #[test]
    fn builtin_catalogue_has_the_vendors_keywatch_documents() {
        let catalogue = builtin();
        for id in ["okta", "moveworks", "smartsheet", "atlassian", "cloudflare", "zapier", "datadog", "github", "slack"]
        {
            assert_eq!(id_of(catalogue.find(id)), Some(id), "{id} missing");
        }
    }

    #[test]
    fn catalogue_file_is_sorted_by_id_and_every_entry_has_a_category() {
        let file: VendorFile = toml::from_str(BUILTIN_CATALOGUE).expect("catalogue.toml parses");
        let ids: Vec<&str> = file.vendor.iter().map(|vendor| vendor.id.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted, "catalogue.toml must stay sorted by id");
        assert!(ids.len() >= 160, "catalogue.toml has {} vendors", ids.len());
        for vendor in &file.vendor {
            assert!(!vendor.categories.is_empty(), "{} has no category", vendor.id);
            assert!(!vendor.domains.is_empty(), "{} has no domain", vendor.id);
        }
    }

    #[test]
    fn find_ignores_case_and_matches_ids_names_and_aliases() {
        let catalogue = builtin();
        assert_eq!(id_of(catalogue.find("ZAPIER")), Some("zapier"));
        assert_eq!(id_of(catalogue.find("  zapier   INC ")), Some("zapier"));
        assert_eq!(id_of(catalogue.find("New Relic")), Some("new-relic"));
        assert_eq!(id_of(catalogue.find("new-relic")), Some("new-relic"));
        assert_eq!(id_of(catalogue.find("Jira")), Some("atlassian"));
        assert_eq!(id_of(catalogue.find("Terraform Cloud")), Some("hashicorp"));
        assert_eq!(id_of(catalogue.find("Renovate")), Some("mend"));
        assert!(catalogue.find("no such vendor").is_none());
    }

    #[test]
    fn app_and_client_lookups_ignore_case() {
        let catalogue = builtin();
        assert_eq!(id_of(catalogue.by_github_app("Dependabot")), Some("dependabot"));
        assert_eq!(id_of(catalogue.by_github_app("dependabot[bot]")), Some("dependabot"));
        assert_eq!(id_of(catalogue.by_github_app("RENOVATE")), Some("mend"));
        assert_eq!(id_of(catalogue.by_oauth_client_id("178C6FC778CCC68E1D6A")), Some("github"));
        assert_eq!(id_of(catalogue.by_atlassian_app("COM.GITHUB.INTEGRATION.PRODUCTION")), Some("github"));
        assert!(catalogue.by_github_app("not-an-app-we-know").is_none());
        assert!(catalogue.by_slack_app("A0000000000").is_none());
    }

    #[test]
    fn by_domain_matches_subdomains_but_not_lookalikes() {
        let catalogue = builtin();
        assert_eq!(id_of(catalogue.by_domain("zapier.com")), Some("zapier"));
        assert_eq!(id_of(catalogue.by_domain("hooks.zapier.com")), Some("zapier"));
        assert_eq!(id_of(catalogue.by_domain("HOOKS.Zapier.COM.")), Some("zapier"));
        assert_eq!(id_of(catalogue.by_domain("https://hooks.zapier.com:443/hooks/catch/1")), Some("zapier"));
        assert_eq!(id_of(catalogue.by_domain("no-reply@zapier.com")), Some("zapier"));
        assert!(catalogue.by_domain("notzapier.com").is_none());
        assert!(catalogue.by_domain("zapier.com.attacker.example").is_none());
        assert!(catalogue.by_domain("zapier").is_none());
        assert!(catalogue.by_domain("192.0.2.1").is_none());
        assert!(catalogue.by_domain("").is_none());
    }

    #[test]
    fn known_aws_accounts_are_merged_into_vendors() {
        let catalogue = builtin();
        assert_eq!(id_of(catalogue.by_aws_account("464622532012")), Some("datadog"));
        assert_eq!(id_of(catalogue.by_aws_account(" 464622532012 ")), Some("datadog"));
        // Upstream labels the SegmentIO and Trend Micro products differently from the catalogue.
        assert_eq!(id_of(catalogue.by_aws_account("107630771604")), Some("segment"));
        // Entries typed `aws` are AWS services: ELB access logs are delivered by AWS itself.
        assert_eq!(id_of(catalogue.by_aws_account("127311923021")), Some("aws"));
        // Owners the catalogue does not describe become vendors with a slug id.
        let zencoder = catalogue.by_aws_account("395540211253").expect("Zencoder account");
        assert_eq!((zencoder.id.as_str(), zencoder.name.as_str()), ("zencoder", "Zencoder"));
        assert_eq!(id_of(catalogue.find("zencoder")), Some("zencoder"));
        // Disabled upstream entries are not shipped.
        assert!(catalogue.by_aws_account("858827067514").is_none());
        assert!(catalogue.by_aws_account("000000000000").is_none());
    }

    #[test]
    fn user_file_adds_vendors_and_extends_existing_ones() {
        let mut catalogue = builtin();
        let before = catalogue.len();
        let file = TempFile::new(
            "extend.toml",
            r#"
            [[vendor]]
            id = "acme-ci"
            name = "Acme CI"
            aliases = ["Acme Build Bot"]
            domains = ["acme-ci.example"]
            github_apps = ["acme-ci"]
            aws_accounts = ["111122223333"]
            ip_ranges = ["203.0.113.0/24", "2001:db8::/32"]
            categories = ["ci-cd"]

            [[vendor]]
            id = "zapier"
            name = "Zapier (internal label)"
            domains = ["zapier-internal.example"]
            aws_accounts = ["444455556666"]
            "#,
        );
        catalogue.extend_from_file(&file.0).expect("user file loads");

        assert_eq!(catalogue.len(), before + 1);
        let acme = catalogue.find("acme build bot").expect("new vendor by alias");
        assert_eq!(acme.id, "acme-ci");
        assert_eq!(acme.aliases, ["acme build bot"]);
        assert_eq!(id_of(catalogue.by_domain("api.acme-ci.example")), Some("acme-ci"));
        assert_eq!(id_of(catalogue.by_github_app("acme-ci")), Some("acme-ci"));
        assert_eq!(id_of(catalogue.by_aws_account("111122223333")), Some("acme-ci"));

        let zapier = catalogue.find("zapier").expect("zapier still there");
        assert_eq!(zapier.name, "Zapier (internal label)");
        assert!(zapier.domains.contains(&"zapier.com".to_owned()), "built-in domains are kept");
        assert_eq!(id_of(catalogue.by_domain("zapier-internal.example")), Some("zapier"));
        assert_eq!(id_of(catalogue.by_aws_account("444455556666")), Some("zapier"));
        assert_eq!(id_of(catalogue.find("Zapier")), Some("zapier"), "the old name still finds it");
    }

    #[test]
    fn malformed_user_file_is_rejected_with_its_path() {
        let mut catalogue = builtin();
        let file = TempFile::new("malformed.toml", "[[vendor]]\nid = \"broken\"\nname = \"Broken\ndomains = [\n");
        let error = format!("{:#}", catalogue.extend_from_file(&file.0).unwrap_err());
        assert!(error.contains(&file.0.display().to_string()), "{error}");

        let missing = std::env::temp_dir().join("keywatch-catalogue-does-not-exist.toml");
        let error = format!("{:#}", catalogue.extend_from_file(&missing).unwrap_err());
        assert!(error.contains("keywatch-catalogue-does-not-exist.toml"), "{error}");
    }

    #[test]
    fn invalid_values_are_rejected_naming_the_file_and_vendor() {
        let cases = [
            ("aws_accounts = [\"12345\"]", "12-digit"),
            ("aws_accounts = [\"12345678901a\"]", "12-digit"),
            ("ip_ranges = [\"10.0.0.1\"]", "CIDR"),
            ("ip_ranges = [\"10.0.0.1/8\"]", "after the prefix"),
            ("ip_ranges = [\"10.0.0.0/33\"]", "above 32"),
            ("ip_ranges = [\"2001:db8::/129\"]", "above 128"),
            ("ip_ranges = [\"300.0.0.0/8\"]", "CIDR"),
            ("domains = [\"https://example.com/\"]", "domain"),
            ("slack_apps = [\"T0123\"]", "Slack app id"),
            ("categories = [\"ci cd\"]", "category"),
            ("aliases = [\"  \"]", "empty value"),
            ("domain = [\"example.com\"]", "unknown field"),
        ];
        for (line, expected) in cases {
            let text =
                format!("[[vendor]]\nid = \"ok\"\nname = \"Ok\"\n\n[[vendor]]\nid = \"bad\"\nname = \"Bad\"\n{line}\n");
            let error = Catalogue::default().extend_from_str("user.toml", &text).unwrap_err();
            let message = format!("{error:#}");
            assert!(message.contains("user.toml"), "{line}: {message}");
            assert!(message.contains(expected), "{line}: {message}");
            if expected != "unknown field" {
                assert!(message.contains("vendor #2 (id \"bad\")"), "{line}: {message}");
            }
        }
    }

    #[test]
    fn valid_cidrs_are_accepted_in_canonical_form() {
        assert_eq!(normalise_cidr("192.30.252.0/22").unwrap(), "192.30.252.0/22");
        assert_eq!(normalise_cidr("0.0.0.0/0").unwrap(), "0.0.0.0/0");
        assert_eq!(normalise_cidr("203.0.113.7/32").unwrap(), "203.0.113.7/32");
        assert_eq!(normalise_cidr("2A0A:A440::/29").unwrap(), "2a0a:a440::/29");
        assert_eq!(normalise_cidr("::/0").unwrap(), "::/0");
        assert!(normalise_cidr("10.0.0.0/+8").is_err());
        assert!(normalise_cidr("10.0.0.0/").is_err());
    }

    #[test]
    fn new_vendor_needs_a_name_and_a_slug_id() {
        let error = Catalogue::default().extend_from_str("user.toml", "[[vendor]]\nid = \"nameless\"\n").unwrap_err();
        assert!(format!("{error:#}").contains("name is empty"), "{error:#}");
        let error = Catalogue::default().extend_from_str("user.toml", "[[vendor]]\nid = \"Bad Id\"\nname = \"X\"\n");
        assert!(format!("{:#}", error.unwrap_err()).contains("lowercase slug"));
    }

    #[test]
    fn duplicate_ids_in_one_file_are_rejected() {
        let text = "[[vendor]]\nid = \"twin\"\nname = \"Twin\"\n\n[[vendor]]\nid = \"twin\"\nname = \"Twin again\"\n";
        let error = format!("{:#}", Catalogue::default().extend_from_str("twins.toml", text).unwrap_err());
        assert!(error.contains("twins.toml: vendor #2 (id \"twin\"): duplicate id"), "{error}");
    }

    #[test]
    fn identifiers_claimed_by_another_vendor_are_rejected_and_nothing_changes() {
        let mut catalogue = builtin();
        let before = catalogue.len();
        let text = "[[vendor]]\nid = \"fine\"\nname = \"Fine\"\n\n[[vendor]]\nid = \"impostor\"\nname = \"Impostor\"\ndomains = [\"zapier.com\"]\n";
        let error = format!("{:#}", catalogue.extend_from_str("impostor.toml", text).unwrap_err());
        assert!(error.contains("impostor.toml: vendor #2 (id \"impostor\")"), "{error}");
        assert!(error.contains("already belongs to vendor \"zapier\""), "{error}");
        assert_eq!(catalogue.len(), before, "a rejected file adds nothing");
        assert!(catalogue.find("fine").is_none());

        let text = "[[vendor]]\nid = \"other-okta\"\nname = \"Okta\"\n";
        let error = format!("{:#}", catalogue.extend_from_str("names.toml", text).unwrap_err());
        assert!(error.contains("name or alias \"okta\" already belongs to vendor \"okta\""), "{error}");
    }

    #[test]
    fn slugify_makes_ids_from_upstream_names() {
        assert_eq!(slugify("SSLMate (Sandbox Site)"), "sslmate-sandbox-site");
        assert_eq!(slugify("Temporal Technologies, Inc."), "temporal-technologies-inc");
        assert_eq!(slugify("unusd.cloud"), "unusd-cloud");
        assert_eq!(slugify("  --  "), "");
    }

    #[test]
    fn host_part_handles_urls_emails_and_ports() {
        assert_eq!(host_part("Hooks.Zapier.com").as_deref(), Some("hooks.zapier.com"));
        assert_eq!(host_part("https://user:pw@api.example.com:8443/x?y#z").as_deref(), Some("api.example.com"));
        assert_eq!(host_part("bot@example.com").as_deref(), Some("example.com"));
        assert_eq!(host_part("[2001:db8::1]:443"), None);
        assert_eq!(host_part("   "), None);
    }
}
