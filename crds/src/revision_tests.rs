use super::*;

fn spec(yaml: &str) -> FunctionSpec {
    serde_yaml::from_str(yaml).expect("a valid spec")
}

const BASE: &str = "
image: localhost:5000/echo:1
env:
  - name: A
    value: one
resources:
  limits: { cpu: 500m, memory: 64Mi }
";

#[test]
fn the_same_spec_gives_the_same_name() {
    let a = revision_name("hello", &spec(BASE)).expect("name");
    let b = revision_name("hello", &spec(BASE)).expect("name");
    assert_eq!(a, b);
    assert!(is_revision_of(&a, "hello"), "{a}");
    assert_eq!(a.len(), "hello-".len() + HASH_LENGTH);
}

#[test]
fn scaling_traffic_and_visibility_do_not_make_a_revision() {
    let base = revision_hash(&spec(BASE)).expect("hash");
    let changed = format!(
        "{BASE}scale: {{ min: 2, max: 9, window: 30s }}\nvisibility: cluster-local\nrevisionHistoryLimit: 2\n\
         traffic: [{{ latestRevision: true, percent: 100, tag: cur }}]\n"
    );
    assert_eq!(revision_hash(&spec(&changed)).expect("hash"), base);
}

#[test]
fn every_runtime_change_makes_a_new_name() {
    let base = revision_hash(&spec(BASE)).expect("hash");
    for extra in [
        "command: [/bin/echo]",
        "args: [--verbose]",
        "port: 9090",
        "protocol: h2c",
        "concurrency: 4",
        "timeoutSeconds: 30",
        "idleTimeoutSeconds: 5",
        "serviceAccountName: sa",
        "securityContext: { runAsUser: 1000 }",
        "readinessProbe: { periodSeconds: 3 }",
        "imagePullSecrets: [{ name: regcred }]",
        "envFrom: [{ configMapRef: { name: cm } }]",
    ] {
        let changed = format!("{BASE}{extra}\n");
        assert_ne!(revision_hash(&spec(&changed)).expect("hash"), base, "{extra}");
    }
    let image = BASE.replace("echo:1", "echo:2");
    assert_ne!(revision_hash(&spec(&image)).expect("hash"), base);
    let env = BASE.replace("value: one", "value: two");
    assert_ne!(revision_hash(&spec(&env)).expect("hash"), base);
}

#[test]
fn field_order_defaults_and_empty_values_do_not_matter() {
    let reordered = "
resources:
  limits: { memory: 64Mi, cpu: 500m }
env:
  - value: one
    name: A
image: localhost:5000/echo:1
port: 8080
timeoutSeconds: 300
protocol: http1
concurrency: 0
args: []
";
    assert_eq!(
        revision_hash(&spec(reordered)).expect("hash"),
        revision_hash(&spec(BASE)).expect("hash")
    );
}

#[test]
fn the_canonical_template_lists_only_runtime_fields_sorted() {
    let text = canonical_template(&spec("image: i\nscale: { min: 1 }\n")).expect("json");
    assert_eq!(
        text,
        r#"{"concurrency":0,"idleTimeoutSeconds":0,"image":"i","port":8080,"protocol":"http1","timeoutSeconds":300}"#
    );
}

#[test]
fn revision_names_are_recognised_only_with_a_hex_hash() {
    assert!(is_revision_of("hello-0123456789", "hello"));
    assert!(!is_revision_of("hello", "hello"));
    assert!(!is_revision_of("hello-world", "hello"));
    assert!(!is_revision_of("hello-0123456789a", "hello"));
    assert!(!is_revision_of("hellox-0123456789", "hello"));
}

#[test]
fn a_revision_name_splits_into_its_function() {
    assert_eq!(
        split_revision_name("hello-0123456789"),
        ("hello", Some("hello-0123456789"))
    );
    assert_eq!(
        split_revision_name("my-fn-abcdef0123"),
        ("my-fn", Some("my-fn-abcdef0123"))
    );
    assert_eq!(split_revision_name("hello"), ("hello", None));
    assert_eq!(split_revision_name("hello-world"), ("hello-world", None));
    assert_eq!(split_revision_name("-0123456789"), ("-0123456789", None));
}
