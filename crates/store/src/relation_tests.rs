//! Relations kept through imports, relinks, decisions and deletion; one AWS access key
//! reported by two exports merged into one credential in either order; migration of a store
//! made before relations were kept.

use super::*;
use keywatch_model::inventory::{Identity, IdentityKind};

const ACCOUNT_USER: &str = "arn:aws:iam::123456789012:user/ci";
const KEY_1: &str = "AKIAAAAAAAAAAAAAAAA1";
const KEY_2: &str = "AKIAAAAAAAAAAAAAAAA2";
const CREATED_1: &str = "2023-01-05T10:00:00Z";
const CREATED_2: &str = "2023-06-01T08:30:00Z";

const NO_LINKS: Linker<'static> = &|_, _| Vec::new();

fn link(vendor: &str, confidence: f64, evidence: &str) -> VendorLink {
    VendorLink {
        vendor_id: vendor.to_lowercase(),
        vendor_name: Some(vendor.to_string()),
        confidence,
        evidence: vec![evidence.to_string()],
    }
}

fn credential(id: &str, identity: &str) -> Credential {
    Credential {
        platform: "aws".into(),
        external_id: id.into(),
        kind: CredentialKind::AccessKey,
        name: format!("ci {id}"),
        identity: Some(identity.into()),
        owner: None,
        scopes: vec![],
        privilege: Privilege::Unknown,
        created: None,
        expires: None,
        last_rotated: None,
        last_used: None,
        status: CredentialStatus::Active,
        fingerprint: Some(id.into()),
        match_key: None,
    }
}

fn identity(external_id: &str, name: &str, owner: Option<&str>) -> Identity {
    Identity {
        platform: "aws".into(),
        external_id: external_id.into(),
        kind: IdentityKind::IamUser,
        name: name.into(),
        owner: owner.map(str::to_string),
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    (dir, store)
}

/// What the credential report importer makes of user `ci`'s key slots:
/// (slot, created, last used, active).
fn report(slots: &[(&str, &str, Option<&str>, bool)]) -> InventoryBatch {
    InventoryBatch {
        source: "aws:credential-report".into(),
        complete_scope: Some("aws:123456789012:credential-report".into()),
        identities: vec![identity(ACCOUNT_USER, "ci", None)],
        credentials: slots
            .iter()
            .map(|(slot, created, last_used, active)| Credential {
                name: format!("ci {slot}"),
                created: Some(created.to_string()),
                last_rotated: Some(created.to_string()),
                last_used: last_used.map(str::to_string),
                status: if *active { CredentialStatus::Active } else { CredentialStatus::Inactive },
                fingerprint: None,
                match_key: Some(format!("aws-access-key:ci:{created}")),
                scopes: vec!["last used with s3".into()],
                ..credential(&format!("{ACCOUNT_USER}#{slot}"), ACCOUNT_USER)
            })
            .collect(),
    }
}

/// What the `list-access-keys` importer makes of user `ci`'s keys: (key id, created).
fn keys(listed: &[(&str, &str)]) -> InventoryBatch {
    InventoryBatch {
        source: "aws:list-access-keys".into(),
        complete_scope: Some("aws:user/ci:access-keys".into()),
        identities: vec![identity("user/ci", "ci", None)],
        credentials: listed
            .iter()
            .map(|(id, created)| Credential {
                created: Some(created.to_string()),
                last_rotated: Some(created.to_string()),
                match_key: Some(format!("aws-access-key:ci:{created}")),
                ..credential(id, "user/ci")
            })
            .collect(),
    }
}

fn count(store: &Store, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn everything(store: &Store) -> Vec<StoredCredential> {
    let mut all = store.credentials(&CredentialFilter::default()).unwrap();
    all.extend(
        store.credentials(&CredentialFilter { status: Some(CredentialStatus::Deleted), ..Default::default() }).unwrap(),
    );
    all
}

#[test]
fn relations_follow_imports_relinks_decisions_and_deletion() {
    let (_dir, mut store) = open();
    let mut owned = credential(KEY_1, ACCOUNT_USER);
    owned.owner = Some("octocat".into());
    let batch = InventoryBatch {
        source: "aws:test".into(),
        complete_scope: Some("aws:test".into()),
        identities: vec![identity(ACCOUNT_USER, "ci", Some("Ana@Acme.example"))],
        credentials: vec![owned.clone(), credential(KEY_2, ACCOUNT_USER)],
    };
    // Key 1 is Acme's by its name at 0.6, key 2 at 0.9: the identity is Acme's at 0.9.
    let acme: Linker<'_> = &|c, _| {
        let confidence = if c.external_id == KEY_1 { 0.6 } else { 0.9 };
        vec![link("Acme", confidence, &format!("{} names acme", c.external_id))]
    };
    store.import(&batch, "t", "2024-01-01T00:00:00Z", acme).unwrap();
    let key1 = store.credential(KEY_1).unwrap().unwrap();
    let relations = store.relations_of_credential(key1.id).unwrap();
    assert_eq!(relations.identities.len(), 1);
    let ci = &relations.identities[0];
    assert_eq!(ci.identity.identity.name, "ci");
    assert_eq!(ci.relation.confidence, 1.0);
    assert_eq!(ci.relation.source, "aws:test");
    assert!(ci.relation.evidence[0].contains("aws:test lists it as a credential of"), "{:?}", ci.relation);
    assert_eq!(ci.owners.len(), 1);
    assert_eq!(ci.owners[0].0.key, "ana@acme.example", "emails are one person on every platform");
    assert_eq!(ci.owners[0].0.name, "Ana@Acme.example");
    assert_eq!(relations.owners[0].0.key, "aws:octocat", "a login is only a person on its platform");
    assert_eq!(relations.vendors[0].vendor, StoredVendor { id: "acme".into(), name: Some("Acme".into()) });
    let (vendor, held) = &ci.vendors[0];
    assert_eq!(vendor.name.as_deref(), Some("Acme"));
    assert_eq!(held.confidence, 0.9, "the best link of the identity's credentials wins");
    assert_eq!(held.evidence[0], format!("through credential \"ci {KEY_2}\" (aws:{KEY_2})"));
    assert_eq!(held.evidence[1], format!("{KEY_2} names acme"));
    assert!(held.evidence[2].contains("1 more credentials"), "{held:?}");
    assert_eq!(store.identities_of_vendor("acme").unwrap().len(), 1);
    assert_eq!(store.owners().unwrap().len(), 2);
    let ana = store.owners().unwrap().into_iter().find(|p| p.key == "ana@acme.example").unwrap();
    assert_eq!(store.owned_by(ana.id).unwrap().identities[0].0.identity.name, "ci");
    let octocat = store.owners().unwrap().into_iter().find(|p| p.key == "aws:octocat").unwrap();
    assert_eq!(store.owned_by(octocat.id).unwrap().credentials[0].0.credential.external_id, KEY_1);

    // A rejected link leaves the identity through the other key; both rejected, it is gone.
    store
        .decide_link(store.credential(KEY_2).unwrap().unwrap().id, "acme", "Acme", false, "ana", "2024-01-02T00:00:00Z")
        .unwrap();
    let held = store.identities_of_vendor("acme").unwrap();
    assert_eq!(held[0].1.confidence, 0.6);
    store.decide_link(key1.id, "acme", "Acme", false, "ana", "2024-01-02T00:00:00Z").unwrap();
    assert!(store.identities_of_vendor("acme").unwrap().is_empty());
    // A confirmed link makes the identity the vendor's at confidence 1.
    store.decide_link(key1.id, "snowflake", "Snowflake", true, "ana", "2024-01-03T00:00:00Z").unwrap();
    let held = store.identities_of_vendor("snowflake").unwrap();
    assert_eq!(held[0].1.confidence, 1.0);
    assert!(held[0].1.evidence.iter().any(|e| e.starts_with("confirmed by ana")), "{held:?}");

    // Relink with another catalogue: its links join the decisions, which still hold.
    let zapier: Linker<'_> = &|_, _| vec![link("Zapier", 0.6, "zapier"), link("Acme", 0.95, "acme again")];
    store.relink(zapier, "2024-01-04T00:00:00Z").unwrap();
    let vendors: Vec<String> = store.relations_of_credential(key1.id).unwrap().identities[0]
        .vendors
        .iter()
        .map(|(v, _)| v.id.clone())
        .collect();
    assert_eq!(vendors, ["snowflake", "zapier"]);

    // Key 1 disappears: it stays the identity's credential, but the vendor holds the identity
    // only through key 2 now.
    let later = InventoryBatch { credentials: vec![credential(KEY_2, ACCOUNT_USER)], ..batch.clone() };
    store.import(&later, "t", "2024-01-05T00:00:00Z", zapier).unwrap();
    assert_eq!(store.relations_of_credential(key1.id).unwrap().identities.len(), 1);
    assert!(store.identities_of_vendor("snowflake").unwrap().is_empty(), "only deleted key 1 was Snowflake's");
    assert_eq!(store.identities_of_vendor("zapier").unwrap().len(), 1);
    let empty = InventoryBatch { credentials: vec![], ..batch.clone() };
    store.import(&empty, "t", "2024-01-06T00:00:00Z", zapier).unwrap();
    assert!(store.identities_of_vendor("zapier").unwrap().is_empty());
    // Key 1 comes back, with another owner.
    owned.owner = Some("hubot".into());
    let back = InventoryBatch { credentials: vec![owned], ..batch };
    store.import(&back, "t", "2024-01-07T00:00:00Z", zapier).unwrap();
    let relations = store.relations_of_credential(key1.id).unwrap();
    assert_eq!(relations.owners.iter().map(|(p, _)| p.key.as_str()).collect::<Vec<_>>(), ["aws:hubot"]);
    assert_eq!(store.identities_of_vendor("snowflake").unwrap().len(), 1);
    let rel = store.identities_of_vendor("zapier").unwrap();
    assert_eq!(rel[0].1.first_seen, "2024-01-07T00:00:00Z", "a relation that ended starts again");
}

#[test]
fn an_identity_imported_after_its_credentials_is_related_to_them() {
    let (_dir, mut store) = open();
    let tokens = InventoryBatch {
        source: "aws:keys-only".into(),
        complete_scope: None,
        identities: vec![],
        credentials: vec![credential(KEY_1, "user/late")],
    };
    store.import(&tokens, "a", "2024-01-01T00:00:00Z", NO_LINKS).unwrap();
    let id = store.credential(KEY_1).unwrap().unwrap().id;
    assert!(store.relations_of_credential(id).unwrap().identities.is_empty());
    let users = InventoryBatch {
        source: "aws:users".into(),
        complete_scope: None,
        identities: vec![identity("user/late", "late", Some("bob@example.org"))],
        credentials: vec![],
    };
    store.import(&users, "b", "2024-01-02T00:00:00Z", NO_LINKS).unwrap();
    let relations = store.relations_of_credential(id).unwrap();
    assert_eq!(relations.identities[0].identity.identity.name, "late");
    assert_eq!(relations.identities[0].owners[0].0.key, "bob@example.org");
}

/// The merged state both import orders must reach.
fn assert_merged(store: &Store) {
    let all = everything(store);
    assert_eq!(all.len(), 1, "one credential for one key: {all:#?}");
    let key = &all[0];
    assert_eq!(key.credential.external_id, KEY_1, "the key id is canonical");
    assert_eq!(key.credential.last_used.as_deref(), Some("2024-02-10T08:00:00Z"), "from the report");
    assert_eq!(key.credential.status, CredentialStatus::Active);
    let history = store.history(key.id).unwrap();
    let merged: Vec<&Change> = history.iter().filter(|h| h.change == "merged").collect();
    assert_eq!(merged.len(), 1, "{history:#?}");
    assert_eq!(merged[0].old_value.as_deref(), Some(&*format!("{ACCOUNT_USER}#access_key_1")));
    assert_eq!(merged[0].new_value.as_deref(), Some(KEY_1));
    assert_eq!(
        history.iter().filter(|h| h.change == "new").count(),
        1 + usize::from(history[0].source == "aws:credential-report")
    );
    // Found by the slot's name too.
    let by_slot = store.credential(&format!("aws:{ACCOUNT_USER}#access_key_1")).unwrap().unwrap();
    assert_eq!(by_slot.id, key.id);
    let relations = store.relations_of_credential(key.id).unwrap();
    assert_eq!(relations.merged.len(), 1);
    assert_eq!(relations.merged[0].source, "aws:credential-report");
    let identities: Vec<&str> = relations.identities.iter().map(|i| i.identity.identity.external_id.as_str()).collect();
    assert_eq!(identities, ["user/ci", ACCOUNT_USER], "both exports' names of the user");
    // Linked through either record.
    assert!(relations.vendors.iter().any(|v| v.vendor.id == "acme"), "{:?}", relations.vendors);
    assert_eq!(store.identities_of_vendor("acme").unwrap().len(), 2);
}

/// Links the report's slots, whose records alone say "last used with s3", to Acme.
const SLOT_LINKS: Linker<'static> = &|c, _| {
    if c.scopes.iter().any(|s| s.contains("s3")) {
        vec![link("Acme", 0.6, "used with s3")]
    } else {
        vec![]
    }
};

#[test]
fn a_report_slot_merges_into_the_key_id_imported_later() {
    let (_dir, mut store) = open();
    let report = report(&[("access_key_1", CREATED_1, Some("2024-02-10T08:00:00Z"), true)]);
    store.import(&report, "report.csv", "2024-02-11T00:00:00Z", SLOT_LINKS).unwrap();
    // A decision taken on the slot is kept through the merge.
    let slot = store.credential(&format!("{ACCOUNT_USER}#access_key_1")).unwrap().unwrap();
    store.decide_link(slot.id, "snowflake", "Snowflake", true, "ana", "2024-02-11T01:00:00Z").unwrap();

    let s = store.import(&keys(&[(KEY_1, CREATED_1)]), "keys.json", "2024-02-12T00:00:00Z", SLOT_LINKS).unwrap();
    assert_eq!((s.new, s.merged), (1, 1));
    assert_merged(&store);
    let key = store.credential(KEY_1).unwrap().unwrap();
    assert_eq!(key.first_seen, "2024-02-11T00:00:00Z", "known since the slot was first seen");
    let held = store.vendor_credentials("snowflake").unwrap();
    assert_eq!((held.len(), held[0].0.id, held[0].1), (1, key.id, 1.0));
    assert_eq!(count(&store, "SELECT COUNT(*) FROM vendor_decision"), 1);

    // Importing both again changes nothing, and the report's last use stays.
    let s = store.import(&keys(&[(KEY_1, CREATED_1)]), "keys.json", "2024-02-13T00:00:00Z", SLOT_LINKS).unwrap();
    assert_eq!((s.changed, s.unchanged, s.merged, s.disappeared), (0, 1, 0, 0));
    let s = store.import(&report, "report.csv", "2024-02-13T00:00:00Z", SLOT_LINKS).unwrap();
    assert_eq!((s.new, s.changed, s.unchanged, s.merged, s.disappeared), (0, 0, 1, 0, 0));
    assert_merged(&store);

    // A newer report: the key was used again.
    let newer = self::report(&[("access_key_1", CREATED_1, Some("2024-03-01T00:00:00Z"), true)]);
    let s = store.import(&newer, "report-2.csv", "2024-03-02T00:00:00Z", SLOT_LINKS).unwrap();
    assert_eq!(s.changed, 1);
    assert_eq!(store.credential(KEY_1).unwrap().unwrap().credential.last_used.as_deref(), Some("2024-03-01T00:00:00Z"));
}

#[test]
fn a_key_id_absorbs_the_report_slot_imported_earlier_or_later_alike() {
    let (_dir, mut store) = open();
    store.import(&keys(&[(KEY_1, CREATED_1)]), "keys.json", "2024-02-11T00:00:00Z", SLOT_LINKS).unwrap();
    let report = report(&[("access_key_1", CREATED_1, Some("2024-02-10T08:00:00Z"), true)]);
    let s = store.import(&report, "report.csv", "2024-02-12T00:00:00Z", SLOT_LINKS).unwrap();
    assert_eq!((s.new, s.merged), (0, 1));
    assert_merged(&store);
    let history = store.history(store.credential(KEY_1).unwrap().unwrap().id).unwrap();
    let changes: Vec<(&str, Option<&str>)> = history.iter().map(|h| (h.change.as_str(), h.field.as_deref())).collect();
    assert_eq!(changes, [("new", None), ("merged", Some("external_id")), ("changed", Some("last_used"))]);

    let s = store.import(&keys(&[(KEY_1, CREATED_1)]), "keys.json", "2024-02-13T00:00:00Z", SLOT_LINKS).unwrap();
    assert_eq!((s.changed, s.unchanged), (0, 1), "the key id's own import does not undo the report's last use");
    assert_merged(&store);
}

#[test]
fn a_key_gone_from_the_report_is_deleted_and_a_new_key_in_its_slot_is_another_credential() {
    let (_dir, mut store) = open();
    store.import(&keys(&[(KEY_1, CREATED_1)]), "keys.json", "2024-02-11T00:00:00Z", NO_LINKS).unwrap();
    store
        .import(&report(&[("access_key_1", CREATED_1, None, true)]), "r1.csv", "2024-02-12T00:00:00Z", NO_LINKS)
        .unwrap();
    // Key 1 was deleted and key 2 made: the report shows key 2 in slot 1.
    let s = store
        .import(&report(&[("access_key_1", CREATED_2, None, true)]), "r2.csv", "2024-06-02T00:00:00Z", NO_LINKS)
        .unwrap();
    assert_eq!((s.new, s.disappeared), (1, 1));
    let old = store.credential(KEY_1).unwrap().unwrap();
    assert_eq!(old.credential.status, CredentialStatus::Deleted);
    let slot = store.credential(&format!("aws:{ACCOUNT_USER}#access_key_1")).unwrap().unwrap();
    assert_eq!(slot.credential.created.as_deref(), Some(CREATED_2), "the slot's own row, not the old key");
    // list-access-keys then shows key 2 only: the slot merges into it, key 1 stays deleted.
    let s = store.import(&keys(&[(KEY_2, CREATED_2)]), "keys.json", "2024-06-03T00:00:00Z", NO_LINKS).unwrap();
    assert_eq!((s.new, s.merged), (1, 1));
    let all = everything(&store);
    let ids: Vec<(&str, CredentialStatus)> =
        all.iter().map(|c| (c.credential.external_id.as_str(), c.credential.status)).collect();
    assert_eq!(ids, [(KEY_2, CredentialStatus::Active), (KEY_1, CredentialStatus::Deleted)]);
    let slot = store.credential(&format!("aws:{ACCOUNT_USER}#access_key_1")).unwrap().unwrap();
    assert_eq!(slot.credential.external_id, KEY_2, "the slot's latest key");
}

#[test]
fn keys_made_in_the_same_second_are_not_merged() {
    let (_dir, mut store) = open();
    let both = report(&[
        ("access_key_1", CREATED_1, Some("2024-02-10T08:00:00Z"), true),
        ("access_key_2", CREATED_1, None, true),
    ]);
    store.import(&both, "report.csv", "2024-02-11T00:00:00Z", NO_LINKS).unwrap();
    let s = store
        .import(&keys(&[(KEY_1, CREATED_1), (KEY_2, CREATED_1)]), "keys.json", "2024-02-12T00:00:00Z", NO_LINKS)
        .unwrap();
    assert_eq!(s.merged, 0);
    assert_eq!(everything(&store).len(), 4, "which slot is which key cannot be told");
}

#[test]
fn a_failed_import_in_the_middle_of_a_merge_leaves_the_store_as_it_was() {
    let (_dir, mut store) = open();
    let report = report(&[("access_key_1", CREATED_1, Some("2024-02-10T08:00:00Z"), true)]);
    store.import(&report, "report.csv", "2024-02-11T00:00:00Z", SLOT_LINKS).unwrap();
    let slot = store.credential(&format!("{ACCOUNT_USER}#access_key_1")).unwrap().unwrap();
    store.decide_link(slot.id, "snowflake", "Snowflake", true, "ana", "2024-02-11T01:00:00Z").unwrap();
    let snapshot = |store: &Store| {
        let all = everything(store);
        let history: Vec<Vec<Change>> = all.iter().map(|c| store.history(c.id).unwrap()).collect();
        let relations: Vec<CredentialRelations> =
            all.iter().map(|c| store.relations_of_credential(c.id).unwrap()).collect();
        let counts: Vec<i64> = [
            "SELECT COUNT(*) FROM credential_alias",
            "SELECT COUNT(*) FROM relation",
            "SELECT COUNT(*) FROM vendor_decision",
            "SELECT COUNT(*) FROM vendor_link",
            "SELECT COUNT(*) FROM import_run",
            "SELECT COUNT(*) FROM identity",
        ]
        .iter()
        .map(|sql| count(store, sql))
        .collect();
        (all, history, relations, counts)
    };
    let before = snapshot(&store);
    // Fail once the slot's history has been re-pointed and the merge is being recorded.
    store
        .conn
        .execute_batch(
            "CREATE TRIGGER fail BEFORE INSERT ON credential_change WHEN NEW.change = 'merged'
             BEGIN SELECT RAISE(ABORT, 'injected'); END",
        )
        .unwrap();
    let err = store.import(&keys(&[(KEY_1, CREATED_1)]), "keys.json", "2024-02-12T00:00:00Z", SLOT_LINKS).unwrap_err();
    assert!(format!("{err:#}").contains("injected"), "{err:#}");
    store.conn.execute_batch("DROP TRIGGER fail").unwrap();
    assert_eq!(snapshot(&store), before);
    // And the same import then succeeds.
    store.import(&keys(&[(KEY_1, CREATED_1)]), "keys.json", "2024-02-12T00:00:00Z", SLOT_LINKS).unwrap();
    assert_merged(&store);
}

#[test]
fn a_store_made_before_relations_gains_them_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    {
        let conn = Connection::open(&path).unwrap();
        for m in &MIGRATIONS[..3] {
            conn.execute_batch(m.sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            "INSERT INTO identity (platform, external_id, kind, name, owner, first_seen, last_seen)
               VALUES ('github', 'app/zapier', 'integration', 'zapier', 'Dev@Acme.example', 't', 't');
             INSERT INTO credential (platform, external_id, kind, name, identity_external_id, owner, scopes, privilege,
               status, source, first_seen, last_seen)
               VALUES ('github', 'installation/1/grant', 'oauth_grant', 'zapier grant', 'app/zapier', 'octocat', '[]',
               'read', 'active', 'github:installations', 't', 't');
             INSERT INTO vendor_link (credential_id, vendor_id, confidence, evidence) VALUES (1, 'zapier', 0.95, '[\"slug\"]');",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let relations = store.relations_of_credential(1).unwrap();
    assert_eq!(relations.identities[0].identity.identity.name, "zapier");
    assert_eq!(relations.identities[0].owners[0].0.key, "dev@acme.example");
    assert_eq!(relations.owners[0].0.key, "github:octocat");
    let held = store.identities_of_vendor("zapier").unwrap();
    assert_eq!((held.len(), held[0].1.confidence), (1, 0.95));
    assert_eq!(relations.vendors[0].vendor.name, None, "names come with the next import or relink");
}
