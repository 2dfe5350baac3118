//! REST gateway tests: every route with good and bad input, org isolation, and proof that a
//! refused request leaves the database unchanged and a secret value never comes back.

mod auth;
mod completeness;
mod fixtures;
mod keys;
mod listing_cache;
mod openapi;
mod ops_views;
mod pagination;
mod projects;
mod rate_limits;
mod runtime_selection;
mod sandbox_input;
mod sandbox_world;
mod sandboxes;
mod schema_check;
mod secrets;
mod sse;
mod sse_replay;
mod tenant_bounds;

use actix_web::dev::ServiceResponse;
use actix_web::{test, web, App};
use osb_bus::{Bus, InProcessBus};
use osb_gateway::{configure, ApiKey, AppState};
use osb_proto::OrgId;
use osb_store::Store;
use osb_testkit::TestDatabase;
use osb_vault::{KeyringConfig, MasterKey, Vault};
use serde_json::Value;
use std::sync::Arc;

/// A gateway over a fresh database with two orgs and one API key each.
pub struct Gateway {
    // Kept alive so the database outlives the test.
    _database: TestDatabase,
    pub store: Store,
    pub state: AppState,
    pub key: String,
    pub other_key: String,
    pub org: OrgId,
    pub bus: Arc<dyn Bus>,
}

impl Gateway {
    pub async fn start() -> Self {
        Self::start_on(TestDatabase::postgres().await.expect("db")).await
    }

    pub async fn start_on(database: TestDatabase) -> Self {
        Self::start_with_bus(database, Arc::new(InProcessBus::new())).await
    }

    pub async fn start_with_bus(database: TestDatabase, bus: Arc<dyn Bus>) -> Self {
        let store = database.migrated_store().await.expect("store");
        let config = KeyringConfig {
            primary: MasterKey::generate(),
            retired: Vec::new(),
        };
        let vault = Vault::open(store.clone(), config).await.expect("vault");
        let state = AppState::new(vault, bus.clone());
        let (org, key) = org_with_key(&store, "acme").await;
        let (_, other_key) = org_with_key(&store, "globex").await;
        Self {
            _database: database,
            store,
            state,
            key,
            other_key,
            org,
            bus,
        }
    }

    /// Sends a request with the primary org's key (or `key`) and returns status and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(self.state.clone()))
                .configure(configure),
        )
        .await;
        let mut request = match method {
            "GET" => test::TestRequest::get(),
            "POST" => test::TestRequest::post(),
            "PUT" => test::TestRequest::put(),
            "PATCH" => test::TestRequest::patch(),
            "DELETE" => test::TestRequest::delete(),
            other => panic!("method {other}"),
        }
        .uri(path);
        if let Some(key) = key {
            request = request.insert_header(("X-API-Key", key));
        }
        if let Some(body) = body {
            request = request
                .insert_header(("content-type", "application/json"))
                .set_payload(body.to_owned());
        }
        let response: ServiceResponse = test::call_service(&app, request.to_request()).await;
        let status = response.status().as_u16();
        let bytes = test::read_body(response).await;
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, json)
    }

    pub async fn as_acme(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        self.call(method, path, body, Some(&self.key.clone())).await
    }

    /// Every row of the database, to prove a refusal changed nothing.
    pub async fn snapshot(&self) -> String {
        self.store.dump_all_rows_as_text().await.expect("dump")
    }
}

pub async fn org_with_key(store: &Store, name: &str) -> (OrgId, String) {
    let org = store.create_org(name).await.expect("org");
    let key = ApiKey::generate();
    store
        .insert_api_key(org.id, "test", &key.hash(), &key.display_prefix())
        .await
        .expect("key");
    (org.id, key.expose().to_owned())
}

/// Asserts the standard error shape and returns the code.
pub fn error_code(body: &Value) -> String {
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "error sentence in {body}"
    );
    body["code"].as_str().expect("code").to_owned()
}
