//! Who belongs to the account, as the API's client endpoints change it:
//! `GET /iam/clients/me` (the account, its `id` the `client_id` of the
//! other two), `POST /iam/clients/invite_user` (a user joins at once, not
//! yet activated) and `DELETE /iam/clients/{clientId}/client-users/{userId}`
//! (the user answers 404 and leaves the list). The official SDK's
//! `get_account_overview`, `users.invite` and `users.delete` send these.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use axum::Router;
use axum::routing::{delete, get, post};

use super::routes::{App, error, method_not_allowed};

/// The three routes, for [`super::routes::router`].
pub(crate) fn router() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/iam/clients/me",
            get(account).fallback(|| async { method_not_allowed("GET") }),
        )
        .route(
            "/iam/clients/invite_user",
            post(invite).fallback(|| async { method_not_allowed("POST") }),
        )
        .route(
            "/iam/clients/{client_id}/client-users/{user_id}",
            delete(remove).fallback(|| async { method_not_allowed("DELETE") }),
        )
}
use crate::model::api::{Group, IAM_GROUPS, Lang, User};
use crate::model::patch::PatchBody;

/// `GET /iam/clients/me`: the account.
pub(crate) async fn account(State(app): State<Arc<App>>) -> Response {
    // The fields the official SDK's AccountOverview requires.
    let first = app.users.first_user().unwrap_or_default();
    let company = (first.client_and_roles.iter().flatten())
        .map(|entry| entry.client_company_name.clone())
        .next()
        .unwrap_or_default();
    Json(json!({
        "id": app.users.client_id(),
        "name": "Sandbox account",
        "status": "active",
        "bill_type": "postpay",
        "capabilities": ["CDN", "CLOUD"],
        "companyName": company,
        "currentUser": first.id.unwrap_or_default(),
        "deleted": false,
        "email": first.email.unwrap_or_default(),
        "freeFeatures": {},
        "paidFeatures": {},
        "serviceStatuses": {},
        "has_active_admin": true,
        "is_test": true,
    }))
    .into_response()
}

/// The body of an invitation, as the SDK sends it (nothing else: a field
/// the API does not know is refused, as a PATCH's is).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invitation {
    client_id: u64,
    email: String,
    user_role: Role,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// The role's `name` is left to the account: the group is named as the
/// account names it.
#[derive(Deserialize)]
struct Role {
    id: u64,
    #[serde(default, rename = "name")]
    _name: Option<String>,
}

/// `POST /iam/clients/invite_user`: a new user of the account, with the
/// role as its one group, not yet activated.
pub(crate) async fn invite(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let invitation: Invitation = match serde_json::from_slice(&body) {
        Ok(invitation) => invitation,
        Err(why) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is not an invitation ({why}); send {{\"client_id\", \"email\", \
                     \"user_role\": {{\"id\", \"name\"}}, \"lang\"?, \"name\"?}}"
                ),
            );
        }
    };
    if invitation.client_id != app.users.client_id() {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "client {} is not the account of this key (its id is {})",
                invitation.client_id,
                app.users.client_id()
            ),
        );
    }
    // The address, the language and the name by the same rules as a PATCH.
    if let Some(problems) = PatchBody::invitation_problems(
        Some(&invitation.email),
        invitation.lang.as_deref(),
        invitation.name.as_deref(),
    ) {
        return error(StatusCode::BAD_REQUEST, problems);
    }
    let known_name = IAM_GROUPS
        .iter()
        .find(|group| group.id == invitation.user_role.id)
        .map(|group| group.name.to_string())
        .or_else(|| app.users.known().group_name(invitation.user_role.id));
    let Some(role_name) = known_name else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "user_role {} is not a group of the account",
                invitation.user_role.id
            ),
        );
    };
    if app.users.has_email(&invitation.email) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "a user with the email {} is already in the account",
                invitation.email
            ),
        );
    }
    let user = User {
        email: Some(invitation.email),
        name: invitation.name,
        lang: Some(
            invitation
                .lang
                .as_deref()
                .and_then(Lang::parse)
                .unwrap_or(Lang::En)
                .as_str()
                .to_string(),
        ),
        groups: Some(vec![Group {
            id: invitation.user_role.id,
            name: role_name,
        }]),
        auth_types: Some(Vec::new()),
        activated: Some(false),
        deleted: Some(false),
        is_active: Some(true),
        sso_auth: Some(false),
        two_fa: Some(false),
        user_type: Some("common".to_string()),
        ..User::default()
    };
    let id = app.users.invite(user);
    Json(json!({ "status": "success", "user_id": id })).into_response()
}

/// `DELETE /iam/clients/{clientId}/client-users/{userId}`: the user leaves
/// the account; an empty answer.
pub(crate) async fn remove(
    State(app): State<Arc<App>>,
    Path((client_text, user_text)): Path<(String, String)>,
) -> Response {
    let digits = !client_text.is_empty() && client_text.bytes().all(|b| b.is_ascii_digit());
    let Some(client) = client_text.parse::<u64>().ok().filter(|_| digits) else {
        return error(
            StatusCode::NOT_FOUND,
            "the client and the user are whole numbers: /iam/clients/{clientId}/client-users/{userId}",
        );
    };
    // The user by the rules of /iam/users/{userId}: digits only, a user of
    // the account (400, 404 otherwise).
    let user = match super::routes::user_id(&user_text, &app.users) {
        Ok(user) => user,
        Err(api_error) => return api_error.into_response(),
    };
    if client != app.users.client_id() {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "client {client} is not the account of this key (its id is {})",
                app.users.client_id()
            ),
        );
    }
    match app.users.remove(user) {
        true => StatusCode::NO_CONTENT.into_response(),
        false => error(StatusCode::NOT_FOUND, format!("user {user} not found")),
    }
}
