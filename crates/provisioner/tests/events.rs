//! The Event publisher both operators use, against kube-sim: repeats of an Event become a series
//! on the first one, distinct Events stay apart, and a series whose Event is gone starts anew.

mod common;

use common::*;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use operator_common::events::{EventPublisher, EventSpec, EventType};
use testkit::{SimOptions, TestCluster};

fn reference(kind: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("kubedb.com/v1alpha2".into()),
        kind: Some(kind.into()),
        namespace: Some(NS.into()),
        name: Some(name.into()),
        uid: Some(format!("uid-{name}")),
        ..ObjectReference::default()
    }
}

async fn events(api: &Api<Event>) -> Vec<Event> {
    let mut list = api.list(&ListParams::default()).await.unwrap().items;
    list.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
    list
}

#[test]
fn repeated_events_become_a_series_and_distinct_ones_stay_apart() {
    run(async {
        let cluster = TestCluster::start(SimOptions::default()).await.unwrap();
        cluster.namespace(NS).await.unwrap();
        let api: Api<Event> = Api::namespaced(cluster.client.clone(), NS);
        let publisher =
            EventPublisher::new(cluster.client.clone(), "kubedb-test", Some("pod-1".into()));
        let db = reference("MSSQLServer", "db");
        let pod = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            ..reference("Pod", "db-0")
        };

        publisher
            .publish_ref(&db, EventSpec::normal("Provisioned", "Provision", "first"))
            .await;
        publisher
            .publish_ref(&db, EventSpec::normal("Provisioned", "Provision", "second"))
            .await;
        publisher
            .publish_ref(&db, EventSpec::normal("Provisioned", "Provision", "third"))
            .await;
        // Another type, and the same reason about another related object, are other Events.
        publisher
            .publish_ref(&db, EventSpec::warning("Provisioned", "Provision", "warn"))
            .await;
        publisher
            .publish_ref(
                &db,
                EventSpec::normal("Provisioned", "Provision", "pod").related(pod.clone()),
            )
            .await;

        let list = events(&api).await;
        assert_eq!(list.len(), 3, "{list:#?}");
        let series = &list[0];
        assert_eq!(
            series.note.as_deref(),
            Some("first"),
            "a series keeps its first note"
        );
        assert_eq!(series.series.as_ref().map(|s| s.count), Some(3));
        assert_eq!(series.type_.as_deref(), Some("Normal"));
        assert_eq!(series.reporting_controller.as_deref(), Some("kubedb-test"));
        assert_eq!(series.reporting_instance.as_deref(), Some("pod-1"));
        assert_eq!(
            series.regarding.as_ref().and_then(|r| r.uid.as_deref()),
            Some("uid-db")
        );
        assert_eq!(list[1].type_.as_deref(), Some("Warning"));
        assert!(list[1].series.is_none());
        assert_eq!(list[2].related.as_ref(), Some(&pod));
        assert!(list[2].series.is_none());

        // The series' Event is deleted (Events expire on the server): the next repeat is a new
        // Event rather than a lost one.
        let name = series.metadata.name.clone().unwrap();
        api.delete(&name, &DeleteParams::default()).await.unwrap();
        publisher
            .publish_ref(&db, EventSpec::normal("Provisioned", "Provision", "again"))
            .await;
        let list = events(&api).await;
        assert_eq!(list.len(), 3, "{list:#?}");
        let again = list
            .iter()
            .find(|e| e.note.as_deref() == Some("again"))
            .unwrap();
        assert!(again.series.is_none());
        assert_eq!(again.type_.as_deref(), Some(EventType::Normal.as_str()));
        cluster.shutdown().await;
    });
}
