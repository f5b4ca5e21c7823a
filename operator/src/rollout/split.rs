//! Applying a [`Split`] to the resolved traffic (pure): each `latestRevision` route's share is divided
//! between the split's revision and its stable one; the routes `spec.traffic` pins to a named revision
//! stay as they are.

use zeroscale_crds::function::TrafficStatus;

use super::machine::Split;

/// `percent` of `share`, rounded half up.
fn part(share: i32, percent: u8) -> i32 {
    (share * i32::from(percent) + 50) / 100
}

/// `traffic` with every `latestRevision` route of `latest` divided as `split` says:
/// - the split's revision takes `split.percent` of the route's share and keeps its tag;
/// - the stable revision takes the rest, untagged;
/// - when the split's revision is not `latest` (a rollback), a tagged route keeps pointing at
///   `latest` with 0 %, so its tag's address still reaches the rolled-back revision.
///
/// Routes that end with 0 % and no tag are left out.
pub fn apply(traffic: &[TrafficStatus], latest: &str, split: &Split) -> Vec<TrafficStatus> {
    let mut out = Vec::with_capacity(traffic.len() + 1);
    for route in traffic {
        if route.latest_revision != Some(true) || route.revision_name != latest {
            out.push(route.clone());
            continue;
        }
        let main = part(route.percent, split.percent);
        let rest = route.percent - main;
        if split.revision != latest && route.tag.is_some() {
            out.push(TrafficStatus {
                percent: 0,
                ..route.clone()
            });
        }
        if main > 0 || (split.revision == latest && route.tag.is_some()) {
            let tagged = split.revision == latest;
            out.push(TrafficStatus {
                revision_name: split.revision.clone(),
                percent: main,
                tag: route.tag.clone().filter(|_| tagged),
                url: route.url.clone().filter(|_| tagged),
                latest_revision: tagged.then_some(true),
            });
        }
        if let Some(stable) = split.stable.as_ref().filter(|_| rest > 0) {
            out.push(TrafficStatus {
                revision_name: stable.clone(),
                percent: rest,
                ..TrafficStatus::default()
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(revision: &str, percent: i32, tag: Option<&str>, latest: bool) -> TrafficStatus {
        TrafficStatus {
            revision_name: revision.into(),
            percent,
            tag: tag.map(str::to_string),
            latest_revision: latest.then_some(true),
            url: tag.map(|t| format!("http://{t}-echo.default.example.com")),
        }
    }

    fn split(revision: &str, percent: u8, stable: Option<&str>) -> Split {
        Split {
            revision: revision.into(),
            percent,
            stable: stable.map(str::to_string),
        }
    }

    fn shares(traffic: &[TrafficStatus]) -> Vec<(&str, i32, Option<&str>)> {
        traffic
            .iter()
            .map(|t| (t.revision_name.as_str(), t.percent, t.tag.as_deref()))
            .collect()
    }

    #[test]
    fn a_canary_takes_its_step_of_the_latest_share() {
        let traffic = [route("echo-new", 100, None, true)];
        let out = apply(&traffic, "echo-new", &split("echo-new", 10, Some("echo-old")));
        assert_eq!(shares(&out), [("echo-new", 10, None), ("echo-old", 90, None)]);
        assert_eq!(out[0].latest_revision, Some(true));
        assert_eq!(out[1].latest_revision, None);
    }

    #[test]
    fn pinned_routes_stay_and_only_the_latest_share_is_divided() {
        let traffic = [
            route("echo-pinned", 80, Some("pinned"), false),
            route("echo-new", 20, Some("latest"), true),
        ];
        let out = apply(&traffic, "echo-new", &split("echo-new", 50, Some("echo-old")));
        assert_eq!(
            shares(&out),
            [
                ("echo-pinned", 80, Some("pinned")),
                ("echo-new", 10, Some("latest")),
                ("echo-old", 10, None)
            ]
        );
        assert_eq!(out.iter().map(|t| t.percent).sum::<i32>(), 100);
    }

    #[test]
    fn a_rollback_sends_the_share_to_the_stable_revision_and_keeps_the_tag_on_the_canary() {
        let traffic = [route("echo-new", 100, Some("latest"), true)];
        let out = apply(&traffic, "echo-new", &split("echo-old", 100, None));
        assert_eq!(
            shares(&out),
            [("echo-new", 0, Some("latest")), ("echo-old", 100, None)]
        );
        let untagged = [route("echo-new", 100, None, true)];
        let out = apply(&untagged, "echo-new", &split("echo-old", 100, None));
        assert_eq!(shares(&out), [("echo-old", 100, None)]);
    }

    #[test]
    fn a_whole_split_changes_nothing_and_shares_always_sum_up() {
        let traffic = [route("echo-new", 100, Some("t"), true)];
        assert_eq!(
            apply(&traffic, "echo-new", &split("echo-new", 100, None)),
            traffic
        );
        for share in [1, 3, 33, 100] {
            for percent in [1u8, 10, 50, 99] {
                let traffic = [
                    route("a", 100 - share, None, false),
                    route("n", share, None, true),
                ];
                let out = apply(&traffic, "n", &split("n", percent, Some("o")));
                assert_eq!(
                    out.iter().map(|t| t.percent).sum::<i32>(),
                    100,
                    "{share} {percent}"
                );
            }
        }
    }
}
