//! Tests of the OpenAPI response validator in `tests/common/openapi.rs`,
//! run against Box's real spec.

mod common;

use common::openapi::Spec;
use serde_json::{json, Value};

const ITEMS: &str = "/folders/{folder_id}/items";

/// The shared spec, or `None` (after a note) when the spec file is absent outside CI.
fn spec() -> Option<&'static Spec> {
    let spec = Spec::shared();
    if spec.is_none() {
        eprintln!("skipping: ../shared/spec/box-openapi.json not found");
    }
    spec
}

/// A realistic `GET /folders/{id}/items` page: one file (with extra fields) and one folder.
fn items_page() -> Value {
    json!({
        "total_count": 2,
        "limit": 100,
        "offset": 0,
        "order": [{"by": "type", "direction": "ASC"}, {"by": "name", "direction": "ASC"}],
        "entries": [
            {
                "type": "file",
                "id": "12345",
                "file_version": {"type": "file_version", "id": "67890", "sha1": "85136c79cbf9fe36bb9d05d0639c70c265c18d37"},
                "sequence_id": "3",
                "etag": "3",
                "sha1": "85136c79cbf9fe36bb9d05d0639c70c265c18d37",
                "name": "Contract.pdf",
                "size": 629644,
                "created_at": "2012-12-12T10:53:43-08:00",
                "modified_at": "2012-12-12T10:53:43-08:00",
                "content_created_at": "2012-12-12T10:53:43.123Z",
                "content_modified_at": null,
                "trashed_at": null,
                "purged_at": null,
                "parent": {"type": "folder", "id": "11446498", "sequence_id": "1", "etag": "1", "name": "Pictures"},
                "path_collection": {
                    "total_count": 2,
                    "entries": [
                        // Real Box: the root has a null sequence_id and etag.
                        {"type": "folder", "id": "0", "sequence_id": null, "etag": null, "name": "All Files"},
                        {"type": "folder", "id": "11446498", "sequence_id": "1", "etag": "1", "name": "Pictures"}
                    ]
                },
                "owned_by": {"type": "user", "id": "33", "name": "Aaron Levie", "login": "ceo@example.com"},
                "modified_by": {"type": "user", "id": "33", "name": "Aaron Levie", "login": "ceo@example.com"},
                "shared_link": null,
                "item_status": "active"
            },
            {"type": "folder", "id": "11446499", "sequence_id": "0", "etag": "0", "name": "Photos"}
        ]
    })
}

/// Asserts that validating `body` as an items page gives an error that starts with `location`
/// and contains `problem`.
fn assert_violation(spec: &Spec, body: &Value, location: &str, problem: &str) {
    let errors = spec.validate_response("get", ITEMS, 200, body).expect_err("mutation must be rejected");
    assert!(
        errors.iter().any(|e| e.starts_with(location) && e.contains(problem)),
        "expected `{location}: ...{problem}...`, got {errors:#?}"
    );
}

#[test]
fn spec_loads_and_has_items_schema() {
    let Some(spec) = spec() else { return };
    let schema = spec.response_schema("get", ITEMS, 200).expect("items schema");
    assert_eq!(schema["$ref"], "#/components/schemas/Items");
    assert!(spec.response_schema("GET", ITEMS, 200).is_some(), "method is case-insensitive");
    assert!(spec.response_schema("get", ITEMS, 299).is_none());
    assert!(spec.response_schema("get", "/no/such/path", 200).is_none());
}

#[test]
fn valid_items_page_validates() {
    let Some(spec) = spec() else { return };
    assert_eq!(spec.validate_response("get", ITEMS, 200, &items_page()), Ok(()));
}

#[test]
fn mutations_are_reported() {
    let Some(spec) = spec() else { return };

    let mut body = items_page();
    body["entries"][0]["size"] = json!("629644");
    assert_violation(spec, &body, "/entries/0/size", "expected integer, got string");

    let mut body = items_page();
    body["entries"][0]["size"] = json!(629644.0);
    assert_violation(spec, &body, "/entries/0/size", "expected integer, got number");

    let mut body = items_page();
    body["entries"][0]["type"] = json!("fil");
    assert_violation(spec, &body, "/entries/0/type", "\"fil\" is not one of");

    let mut body = items_page();
    body["entries"][0].as_object_mut().unwrap().remove("id");
    assert_violation(spec, &body, "/entries/0:", "missing required property `id`");

    let mut body = items_page();
    body["entries"][1]["name"] = Value::Null;
    assert_violation(spec, &body, "/entries/1/name", "expected string, got null");

    let mut body = items_page();
    body["entries"][0]["modified_by"] = Value::Null; // `{allOf: [User--Mini, {}, {nullable: false}]}`
    assert_violation(spec, &body, "/entries/0/modified_by", "expected object, got null");

    let mut body = items_page();
    body["entries"][0]["created_at"] = json!("2012-12-12 10:53:43");
    assert_violation(spec, &body, "/entries/0/created_at", "not an RFC 3339 date-time");

    let mut body = items_page();
    body["entries"][0]["path_collection"]["entries"][1]["id"] = json!(11446498);
    assert_violation(spec, &body, "/entries/0/path_collection/entries/1/id", "expected string, got integer");

    let mut body = items_page();
    body["total_count"] = json!(u64::MAX);
    assert_violation(spec, &body, "/total_count", "does not fit \"int64\"");

    let mut body = items_page();
    body["entries"][0]["owned_by"]["name"] = json!("x".repeat(51));
    assert_violation(spec, &body, "/entries/0/owned_by/name", "length 51 is above maxLength 50");

    let mut body = items_page();
    body["order"][0]["direction"] = json!("UP");
    assert_violation(spec, &body, "/order/0/direction", "is not one of");
}

#[test]
fn missing_required_id_in_file_base() {
    let Some(spec) = spec() else { return };
    let errors = spec.validate_component("File--Base", &json!({"type": "file", "etag": "1"})).unwrap_err();
    assert_eq!(errors, vec!["(root): missing required property `id`"]);
    assert_eq!(spec.validate_component("File--Base", &json!({"type": "file", "id": "1", "etag": null})), Ok(()));
}

#[test]
fn date_time_checker() {
    let Some(spec) = spec() else { return };
    let check = |date: &str| {
        let file = json!({"type": "file", "id": "1", "created_at": date});
        spec.validate_component("File", &file)
    };
    for good in [
        "2012-12-12T10:53:43-08:00",
        "2012-12-12T10:53:43Z",
        "2012-12-12T10:53:43.123456+05:30",
        "2012-02-29T00:00:00Z",
        "2016-12-31T23:59:60Z",
        "2012-12-12t10:53:43z",
    ] {
        assert_eq!(check(good), Ok(()), "{good}");
    }
    for bad in [
        "",
        "2012-12-12",
        "2012-12-12T10:53:43.123",
        "2012-12-12T10:53:43",
        "2012-12-12T10:53:43+0800",
        "2013-02-29T00:00:00Z",
        "2012-13-12T10:53:43Z",
        "2012-12-12T24:00:00Z",
        "2012-12-12T10:53:43.Z",
        "2012-12-12T10:53:43-08:00 ",
        "2012-12-12T10:53:43+24:00",
    ] {
        assert!(check(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn client_error_validates_against_404() {
    let Some(spec) = spec() else { return };
    let body = json!({
        "type": "error",
        "status": 404,
        "code": "not_found",
        "message": "Not Found",
        "request_id": "abc",
        "help_url": "http://developers.box.com/docs/#errors",
        "context_info": {"errors": [{"reason": "invalid_parameter", "name": "file", "message": "Invalid value 'f_1'"}]}
    });
    assert_eq!(spec.validate_response("get", "/files/{file_id}", 404, &body), Ok(()));

    let errors =
        spec.validate_response("get", "/files/{file_id}", 404, &json!({"type": "error", "status": "404"})).unwrap_err();
    assert_eq!(errors, vec!["/status: expected integer, got string"]);
}

#[test]
fn root_folder_with_null_parent_validates() {
    let Some(spec) = spec() else { return };
    let root = json!({
        "type": "folder", "id": "0", "sequence_id": null, "etag": null, "name": "All Files",
        "created_at": null, "modified_at": null, "size": 0,
        "path_collection": {"total_count": 0, "entries": []},
        "parent": null, "shared_link": null, "item_status": "active",
        "item_collection": {"total_count": 0, "entries": [], "offset": 0, "limit": 100, "order": []}
    });
    assert_eq!(spec.validate_response("get", "/folders/{folder_id}", 200, &root), Ok(()));
}

/// Spec quirk: `shared_link` requires an `accessed` property that the spec never
/// defines and real Box responses do not contain.
#[test]
fn spec_quirk_shared_link_requires_accessed() {
    let Some(spec) = spec() else { return };
    let file = json!({
        "type": "file", "id": "1",
        "shared_link": {
            "url": "https://app.box.com/s/abc", "download_url": null, "vanity_url": null, "vanity_name": null,
            "access": "open", "effective_access": "open", "effective_permission": "can_download",
            "unshared_at": null, "is_password_enabled": false,
            "permissions": {"can_download": true, "can_preview": true, "can_edit": false},
            "download_count": 0, "preview_count": 0
        }
    });
    let errors = spec.validate_component("File", &file).unwrap_err();
    assert_eq!(errors, vec!["/shared_link: missing required property `accessed`"]);
}

#[test]
fn unknown_operation_or_component_panics() {
    let Some(spec) = spec() else { return };
    let body = json!({});
    let panics = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
    assert!(panics(&|| drop(spec.validate_response("get", "/no/such/path", 200, &body))));
    // Declared, but a 304 has no body.
    assert!(panics(&|| drop(spec.validate_response("get", "/files/{file_id}", 304, &body))));
    assert!(panics(&|| drop(spec.validate_component("NoSuchSchema", &body))));
}

/// Keywords and code paths that Box's spec does not exercise (it has no `discriminator`),
/// tested on a small synthetic spec.
#[test]
fn synthetic_spec_keywords() {
    let spec = Spec::from_value(json!({"components": {"schemas": {
        "Pet": {
            "oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
            "discriminator": {"propertyName": "kind", "mapping": {"dog": "Dog"}}
        },
        "Cat": {"type": "object", "required": ["kind", "lives"], "additionalProperties": false,
                "properties": {"kind": {"type": "string"}, "lives": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 9}}},
        "Dog": {"type": "object", "required": ["kind"],
                "properties": {"tags": {"type": "array", "uniqueItems": true, "maxItems": 2, "items": {"type": "string"}}}},
        // A reference cycle that never moves deeper into the data must still end.
        "Loop": {"allOf": [{"$ref": "#/components/schemas/Loop"}, {"type": "object", "nullable": true}]}
    }}}));
    let check = |name: &str, body: Value| spec.validate_component(name, &body);

    assert_eq!(check("Pet", json!({"kind": "Cat", "lives": 9})), Ok(()));
    assert_eq!(check("Pet", json!({"kind": "dog", "tags": ["a", "b"]})), Ok(()));
    // The discriminator picks the branch, so a body valid as a Dog is still checked as a Cat.
    assert_eq!(
        check("Pet", json!({"kind": "Cat", "tags": []})),
        Err(vec![
            "(root): missing required property `lives`".to_owned(),
            "/tags: unexpected property (additionalProperties is false)".to_owned(),
        ])
    );
    assert_eq!(check("Pet", json!({"kind": "Bird"})), Err(vec!["/kind: unknown discriminator \"Bird\"".to_owned()]));
    assert_eq!(
        check("Cat", json!({"kind": "Cat", "lives": 10})),
        Err(vec!["/lives: value 10 is above maximum 9".to_owned()])
    );
    assert_eq!(
        check("Cat", json!({"kind": "Cat", "lives": 1u64 << 31})),
        Err(vec![
            "/lives: value 2147483648 is above maximum 9".to_owned(),
            "/lives: 2147483648 does not fit \"int32\"".to_owned(),
        ])
    );
    let errors = check("Dog", json!({"kind": "dog", "tags": ["a", "a", "b"]})).unwrap_err();
    assert_eq!(errors, vec!["/tags: item count 3 is above maxItems 2", "/tags: items are not unique"]);
    assert_eq!(check("Loop", json!({})), Ok(()));
    assert_eq!(check("Loop", Value::Null), Ok(()));
    assert_eq!(check("Loop", json!(1)), Err(vec!["(root): expected object, got integer".to_owned()]));
}
