use super::*;
use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVarSource, ObjectFieldSelector,
    SecretKeySelector,
};

fn var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn from(name: &str, source: EnvVarSource) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(source),
        ..Default::default()
    }
}

fn pod() -> Pod {
    let mut p = Pod::default();
    p.metadata.name = Some("p1".into());
    p.metadata.namespace = Some("ns1".into());
    p
}

fn facts() -> PodFacts {
    PodFacts {
        pod_ip: "10.244.0.7".into(),
        host_ip: "10.244.0.1".into(),
        api_host: "10.244.0.1".into(),
        api_port: 6443,
        home: "/p".into(),
    }
}

fn sources() -> EnvSources {
    let mut s = EnvSources::default();
    s.config_maps.insert(
        "cm".into(),
        [
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "2".to_string()),
        ]
        .into(),
    );
    s.secrets
        .insert("sec".into(), [("pw".to_string(), "hunter2".to_string())].into());
    s
}

fn get<'a>(env: &'a [(String, String)], k: &str) -> Option<&'a str> {
    env.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

#[test]
fn expands_references_and_escapes() {
    let vars: HashMap<String, String> = [("A".to_string(), "x".to_string())].into();
    assert_eq!(expand("$(A)-$(B)-$$(A)-$", &vars), "x-$(B)-$(A)-$");
    assert_eq!(expand("$(A", &vars), "$(A");
}

#[test]
fn builds_env_from_all_sources_in_order() {
    let c = Container {
        name: "c".into(),
        env_from: Some(vec![EnvFromSource {
            prefix: Some("CM_".into()),
            config_map_ref: Some(ConfigMapEnvSource {
                name: "cm".into(),
                optional: None,
            }),
            ..Default::default()
        }]),
        env: Some(vec![
            var("PORT", "8080"),
            var("URL", "http://$(POD_IP):$(PORT)"),
            from(
                "POD_IP",
                EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "status.podIP".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ),
            from(
                "NS",
                EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.namespace".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ),
            from(
                "PW",
                EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "sec".into(),
                        key: "pw".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
            ),
        ]),
        ..Default::default()
    };
    let env = container_env(&pod(), &c, &facts(), &sources()).unwrap();
    assert_eq!(get(&env, "CM_A"), Some("1"));
    assert_eq!(get(&env, "PORT"), Some("8080"));
    // POD_IP is defined after URL, so it stays unexpanded, exactly like the kubelet does.
    assert_eq!(get(&env, "URL"), Some("http://$(POD_IP):8080"));
    assert_eq!(get(&env, "POD_IP"), Some("10.244.0.7"));
    assert_eq!(get(&env, "NS"), Some("ns1"));
    assert_eq!(get(&env, "PW"), Some("hunter2"));
    assert_eq!(get(&env, "KUBERNETES_SERVICE_HOST"), Some("10.244.0.1"));
    assert_eq!(get(&env, "HOSTNAME"), Some("p1"));
}

#[test]
fn missing_references_fail_unless_optional() {
    let missing = |optional| Container {
        name: "c".into(),
        env: Some(vec![from(
            "X",
            EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name: "cm".into(),
                    key: "nope".into(),
                    optional,
                }),
                ..Default::default()
            },
        )]),
        ..Default::default()
    };
    assert!(matches!(
        container_env(&pod(), &missing(None), &facts(), &sources()),
        Err(EnvError::Key { .. })
    ));
    let env = container_env(&pod(), &missing(Some(true)), &facts(), &sources()).unwrap();
    assert_eq!(get(&env, "X"), None);
    let (cms, secrets) = referenced_objects(&missing(None));
    assert!(cms.contains("cm") && secrets.is_empty());
}
