//! URL path parsing: which document or resource a request addresses.

/// A resource request path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace from the path, if any.
    pub namespace: Option<String>,
    /// Plural resource.
    pub resource: String,
    /// Object name, if any.
    pub name: Option<String>,
    /// Subresource, if any.
    pub subresource: Option<String>,
}

/// What a path addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/readyz`, `/livez`.
    Health,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`.
    GroupVersion(String, String),
    /// A resource path.
    Resource(ResourcePath),
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3` and below.
    OpenApiV3(Vec<String>),
    /// `/sim/...`.
    Sim(Vec<String>),
    /// Anything else.
    Unknown,
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Route {
    let (namespace, rest) = match rest {
        // namespaces/<ns>/<resource>... but not namespaces/<ns>/status|finalize (namespace subresources).
        ["namespaces", ns, r, tail @ ..]
            if !(tail.is_empty() && matches!(*r, "status" | "finalize")) =>
        {
            (Some((*ns).to_owned()), {
                let mut v = vec![*r];
                v.extend_from_slice(tail);
                v
            })
        }
        _ => (None, rest.to_vec()),
    };
    let s = |i: usize| rest.get(i).map(|x| (*x).to_owned());
    if rest.is_empty() || rest.len() > 3 {
        return Route::Unknown;
    }
    Route::Resource(ResourcePath {
        group: group.to_owned(),
        version: version.to_owned(),
        namespace,
        resource: rest[0].to_owned(),
        name: s(1),
        subresource: s(2),
    })
}

/// Parses a request path.
pub fn parse(path: &str) -> Route {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["api", v] => Route::GroupVersion(String::new(), (*v).to_owned()),
        ["api", v, rest @ ..] => resource_path("", v, rest),
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group((*g).to_owned()),
        ["apis", g, v] => Route::GroupVersion((*g).to_owned(), (*v).to_owned()),
        ["apis", g, v, rest @ ..] => resource_path(g, v, rest),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3", rest @ ..] => {
            Route::OpenApiV3(rest.iter().map(|s| (*s).to_owned()).collect())
        }
        ["sim", rest @ ..] => Route::Sim(rest.iter().map(|s| (*s).to_owned()).collect()),
        _ => Route::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(
        group: &str,
        ns: Option<&str>,
        resource: &str,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> Route {
        Route::Resource(ResourcePath {
            group: group.into(),
            version: "v1".into(),
            namespace: ns.map(Into::into),
            resource: resource.into(),
            name: name.map(Into::into),
            subresource: sub.map(Into::into),
        })
    }

    #[test]
    fn paths() {
        let cases = [
            ("/version", Route::Version),
            ("/api", Route::CoreVersions),
            ("/api/v1", Route::GroupVersion("".into(), "v1".into())),
            (
                "/apis/apps/v1",
                Route::GroupVersion("apps".into(), "v1".into()),
            ),
            ("/apis/apps", Route::Group("apps".into())),
            ("/api/v1/pods", rp("", None, "pods", None, None)),
            ("/api/v1/namespaces", rp("", None, "namespaces", None, None)),
            (
                "/api/v1/namespaces/ns1",
                rp("", None, "namespaces", Some("ns1"), None),
            ),
            (
                "/api/v1/namespaces/ns1/status",
                rp("", None, "namespaces", Some("ns1"), Some("status")),
            ),
            (
                "/api/v1/namespaces/ns1/finalize",
                rp("", None, "namespaces", Some("ns1"), Some("finalize")),
            ),
            (
                "/api/v1/namespaces/ns1/pods",
                rp("", Some("ns1"), "pods", None, None),
            ),
            (
                "/api/v1/namespaces/ns1/pods/p/eviction",
                rp("", Some("ns1"), "pods", Some("p"), Some("eviction")),
            ),
            (
                "/apis/apps/v1/namespaces/a/statefulsets/s/scale",
                rp("apps", Some("a"), "statefulsets", Some("s"), Some("scale")),
            ),
            (
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/x",
                Route::Resource(ResourcePath {
                    group: "rbac.authorization.k8s.io".into(),
                    version: "v1".into(),
                    namespace: None,
                    resource: "clusterroles".into(),
                    name: Some("x".into()),
                    subresource: None,
                }),
            ),
            ("/api/v1/namespaces/a/pods/p/x/y", Route::Unknown),
            ("/sim/faults", Route::Sim(vec!["faults".into()])),
            ("/openapi/v2", Route::OpenApiV2),
            ("/nope", Route::Unknown),
        ];
        for (path, want) in cases {
            let got = parse(path);
            let want = match want {
                Route::Resource(mut r) if path.starts_with("/apis/") => {
                    r.version = "v1".into();
                    Route::Resource(r)
                }
                other => other,
            };
            assert_eq!(got, want, "{path}");
        }
    }
}
