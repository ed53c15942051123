//! Administration and registration: the admin role, admin REST routes, disabled accounts,
//! invite-only and closed registration (both stores), and every `chat-server admin`
//! sub-command run as the real binary against a real Redis.

mod common;

use common::*;
use protocol::rest::{
    AdminUser, AdminUsersQuery, CreateUser, Credentials, InviteCode, NewInviteCode, UpdateUser,
    User,
};
use protocol::{close, ErrorCode, UserId};
use reqwest::Method;
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

common::backend_tests!(
    cluster;
    first_account_is_admin_and_admin_routes_work,
    disabled_accounts_lose_their_sessions_and_cannot_log_in,
    reset_password_revokes_every_session,
    invite_only_registration,
    invite_codes_are_consumed_atomically,
    closed_registration,
);

async fn admin_users(api: &Api) -> ApiResult<Vec<AdminUser>> {
    api.admin_users(&AdminUsersQuery::default()).await
}

async fn patch_user(api: &Api, user: UserId, body: Value) -> ApiResult<AdminUser> {
    let update: UpdateUser = serde_json::from_value(body).expect("an UpdateUser");
    api.update_user(user, &update).await
}

async fn create_invite(
    api: &Api,
    uses: Option<u32>,
    expires_in_secs: Option<u64>,
) -> ApiResult<InviteCode> {
    api.create_invite(&NewInviteCode {
        uses,
        expires_in_secs,
    })
    .await
}

async fn register_with(
    server: &TestServer,
    name: &str,
    invite: Option<&str>,
) -> ApiResult<protocol::rest::AuthResponse> {
    server
        .api()
        .register_with(&Credentials {
            username: name.to_owned(),
            password: PASSWORD.to_owned(),
            device: None,
            invite: invite.map(str::to_owned),
        })
        .await
}

async fn first_account_is_admin_and_admin_routes_work(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let me: User = alice.api.me().await.unwrap();
    assert!(me.admin, "the store's first account is its admin");
    assert!(!bob.api.me().await.unwrap().admin);

    // Bob is refused every admin route.
    admin_users(&bob.api).await.expect_code(ErrorCode::NotAdmin);
    create_invite(&bob.api, None, None)
        .await
        .expect_code(ErrorCode::NotAdmin);
    patch_user(&bob.api, bob.id, json!({"admin": true}))
        .await
        .expect_code(ErrorCode::NotAdmin);

    let users = admin_users(&alice.api).await.expect("list users");
    assert_eq!(
        users
            .iter()
            .map(|u| (u.id, u.username.clone(), u.admin, u.disabled))
            .collect::<Vec<_>>(),
        vec![
            (alice.id, alice.name.clone(), true, false),
            (bob.id, bob.name.clone(), false, false)
        ]
    );
    let page: Vec<AdminUser> = alice
        .api
        .admin_users(&AdminUsersQuery {
            after: Some(alice.id.0),
            limit: Some(1),
        })
        .await
        .expect("second page");
    assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), vec![bob.id]);

    // Create an account, with the registration rules.
    let carol_name = unique_name("carol");
    let create = |username: &str| CreateUser {
        username: username.to_owned(),
        password: PASSWORD.to_owned(),
        admin: false,
    };
    let carol: AdminUser = alice
        .api
        .create_user(&create(&carol_name))
        .await
        .expect("create user");
    assert!(!carol.admin && !carol.disabled);
    server
        .api()
        .login(&carol_name, PASSWORD, None)
        .await
        .expect("carol logs in");
    alice
        .api
        .create_user(&create("x y"))
        .await
        .expect_code(ErrorCode::InvalidUsername);
    alice
        .api
        .create_user(&create(&carol_name))
        .await
        .expect_code(ErrorCode::UsernameTaken);

    // Grant and revoke the admin role.
    let b = patch_user(&alice.api, bob.id, json!({"admin": true}))
        .await
        .expect("grant admin");
    assert!(b.admin);
    admin_users(&bob.api).await.expect("bob is an admin now");
    assert!(bob.api.me().await.unwrap().admin);
    patch_user(&alice.api, bob.id, json!({"admin": false}))
        .await
        .expect("revoke admin");
    admin_users(&bob.api).await.expect_code(ErrorCode::NotAdmin);

    patch_user(&alice.api, UserId(9_999_999), json!({"admin": true}))
        .await
        .expect_code(ErrorCode::UserNotFound);
    create_invite(&alice.api, Some(0), None)
        .await
        .expect_code(ErrorCode::BadRequest);
    create_invite(&alice.api, None, Some(10))
        .await
        .expect_code(ErrorCode::BadRequest);
    // serde would take an array for a struct; the body must be an object.
    let (status, text) = alice
        .api
        .raw(
            Method::POST,
            "/api/v1/admin/invites",
            Some(RawBody::Json(json!([null, null]))),
        )
        .await;
    assert_refused(status, &text, ErrorCode::BadRequest);

    // The export is JSON lines starting with the format header.
    let (status, body) = alice
        .api
        .raw(Method::GET, "/api/v1/admin/export", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let header: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert_eq!(header["type"], "chat-export");
    assert_eq!(header["last_user"], 3);
}

async fn disabled_accounts_lose_their_sessions_and_cannot_log_in(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let bob_phone = server.login(&bob, "Phone").await;
    let mut ws_bob = server.ws(&bob).await;
    let mut ws_phone = server.ws(&bob_phone).await;

    let b = patch_user(&alice.api, bob.id, json!({"disabled": true}))
        .await
        .expect("disable bob");
    assert!(b.disabled);
    ws_bob.expect_close_code(close::UNAUTHORIZED).await;
    ws_phone.expect_close_code(close::UNAUTHORIZED).await;
    bob.api.me().await.expect_code(ErrorCode::Unauthorized);
    // The right password learns that the account is disabled; a wrong one learns nothing.
    server
        .api()
        .login(&bob.name, PASSWORD, None)
        .await
        .expect_code(ErrorCode::AccountDisabled);
    server
        .api()
        .login(&bob.name, "not the password", None)
        .await
        .expect_code(ErrorCode::InvalidCredentials);

    patch_user(&alice.api, bob.id, json!({"disabled": false}))
        .await
        .expect("enable bob");
    let again = server.login(&bob, "again").await;
    again.api.me().await.expect("bob is back");
    // The sessions revoked by disabling stay revoked.
    bob.api.me().await.expect_code(ErrorCode::Unauthorized);
}

async fn reset_password_revokes_every_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut ws_bob = server.ws(&bob).await;

    bob.api
        .reset_password(alice.id, "taken over account")
        .await
        .expect_code(ErrorCode::NotAdmin);
    alice
        .api
        .reset_password(bob.id, "short")
        .await
        .expect_code(ErrorCode::InvalidPassword);
    alice
        .api
        .reset_password(bob.id, "reset by admin")
        .await
        .expect("reset");
    ws_bob.expect_close_code(close::UNAUTHORIZED).await;
    bob.api.me().await.expect_code(ErrorCode::Unauthorized);
    server
        .api()
        .login(&bob.name, PASSWORD, None)
        .await
        .expect_code(ErrorCode::InvalidCredentials);
    server
        .api()
        .login(&bob.name, "reset by admin", None)
        .await
        .expect("new password");
    alice.api.me().await.expect("the admin is not affected");
}

async fn invite_only_registration(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.registration = chat_server::config::Registration::Invite;
    })
    .await;
    // A new server always gets its admin: the first account needs no code.
    let admin = server.user("admin").await;
    assert!(admin.api.me().await.unwrap().admin);

    register_with(&server, &unique_name("bob"), None)
        .await
        .expect_code(ErrorCode::InvalidInvite);
    register_with(&server, &unique_name("bob"), Some("no-such-code"))
        .await
        .expect_code(ErrorCode::InvalidInvite);

    let invite = create_invite(&admin.api, Some(2), None)
        .await
        .expect("invite");
    assert_eq!(invite.uses, 2);
    for who in ["bob", "carol"] {
        let auth = register_with(&server, &unique_name(who), Some(&invite.code))
            .await
            .unwrap_or_else(|e| panic!("{who} registers with the code: {e}"));
        assert!(!auth.user.admin);
    }
    register_with(&server, &unique_name("dave"), Some(&invite.code))
        .await
        .expect_code(ErrorCode::InvalidInvite);

    // A taken name does not use up a code.
    let single = create_invite(&admin.api, None, None).await.unwrap();
    assert_eq!(single.uses, 1);
    register_with(&server, &admin.name, Some(&single.code))
        .await
        .expect_code(ErrorCode::UsernameTaken);
    register_with(&server, &unique_name("erin"), Some(&single.code))
        .await
        .expect("the code is still good");

    // An expired code is refused (stored directly: the shortest a route allows is a minute).
    let code = "expired-code";
    let now = chat_server::auth::now_ms();
    server
        .state()
        .store
        .create_invite(&chat_server::store::InviteRecord {
            code_hash: chat_server::auth::token_hash(code),
            uses_left: 5,
            expires_ts: now + 300,
            created_by: Some(admin.id),
            created_ts: now,
        })
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    register_with(&server, &unique_name("frank"), Some(code))
        .await
        .expect_code(ErrorCode::InvalidInvite);
}

async fn invite_codes_are_consumed_atomically(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.registration = chat_server::config::Registration::Invite;
        c.max_concurrent_hashes = 6;
    })
    .await;
    let admin = server.user("admin").await;
    let invite = create_invite(&admin.api, Some(2), None).await.unwrap();
    let server = Arc::new(server);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let server = server.clone();
        let code = invite.code.clone();
        tasks.push(tokio::spawn(async move {
            register_with(&server, &unique_name("racer"), Some(&code)).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), Some(ErrorCode::InvalidInvite), "{e}"),
        }
    }
    assert_eq!(ok, 2, "a 2-use code let {ok} accounts in");
}

async fn closed_registration(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.registration = chat_server::config::Registration::Closed;
    })
    .await;
    let admin = server.user("admin").await;
    assert!(admin.api.me().await.unwrap().admin);
    register_with(&server, &unique_name("bob"), None)
        .await
        .expect_code(ErrorCode::RegistrationClosed);
    register_with(&server, &unique_name("bob"), Some("any code"))
        .await
        .expect_code(ErrorCode::RegistrationClosed);
    // Admins still create accounts.
    let name = unique_name("bob");
    admin
        .api
        .create_user(&CreateUser {
            username: name.clone(),
            password: PASSWORD.to_owned(),
            admin: false,
        })
        .await
        .expect("admin creates bob");
    server
        .api()
        .login(&name, PASSWORD, None)
        .await
        .expect("bob logs in");
}

// ---------------------------------------------------------------------------------------------
// The `chat-server admin` sub-commands, as an operator runs them
// ---------------------------------------------------------------------------------------------

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `chat-server admin <args>` against `redis`, with `stdin` piped in.
async fn admin(redis: &RedisServer, args: &[&str], stdin: &str) -> Output {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("admin")
        .args(args)
        .env_clear()
        .env("CHAT_REDIS_URL", &redis.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn chat-server admin");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(HTTP_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("chat-server admin {args:?} did not finish"))
        .unwrap();
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn succeeded(out: &Output, what: &str) {
    assert!(
        out.ok,
        "{what} failed: stdout {:?} stderr {:?}",
        out.stdout, out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_command_on_redis() {
    let redis = Arc::new(RedisServer::start().await);
    let alice = unique_name("alice");
    let bob = unique_name("bob");

    // create-user, before any server ran; validated like the API.
    let out = admin(
        &redis,
        &["create-user", &alice, "--admin"],
        "the admin password\n",
    )
    .await;
    succeeded(&out, "create-user --admin");
    assert_eq!(out.stdout.trim(), format!("created user 1 {alice} (admin)"));
    let out = admin(&redis, &["create-user", &bob], &format!("{PASSWORD}\n")).await;
    succeeded(&out, "create-user");
    let out = admin(
        &redis,
        &["create-user", "no spaces allowed"],
        "whatever password\n",
    )
    .await;
    assert!(!out.ok && out.stderr.contains("username"), "{}", out.stderr);
    let out = admin(&redis, &["create-user", &unique_name("c")], "short\n").await;
    assert!(!out.ok && out.stderr.contains("password"), "{}", out.stderr);
    let out = admin(&redis, &["create-user", &bob], &format!("{PASSWORD}\n")).await;
    assert!(!out.ok && out.stderr.contains("taken"), "{}", out.stderr);

    // list-users
    let out = admin(&redis, &["list-users"], "").await;
    succeeded(&out, "list-users");
    assert_eq!(
        out.stdout
            .lines()
            .map(|l| l.split('\t').take(4).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>(),
        vec![
            "id username admin disabled".to_string(),
            format!("1 {alice} true false"),
            format!("2 {bob} false false"),
        ]
    );

    // A server on the same Redis sees what the commands did, and the commands act on it.
    let server = TestServer::start_on_redis(&redis, |c| {
        c.registration = chat_server::config::Registration::Invite;
    })
    .await;
    let admin_auth = server
        .api()
        .login(&alice, "the admin password", None)
        .await
        .expect("the created admin logs in");
    assert!(admin_auth.user.admin);
    let bob_auth = server.api().login(&bob, PASSWORD, None).await.unwrap();
    let bob_api = server.api_with(&bob_auth.token);
    assert!(!bob_auth.user.admin);

    let out = admin(&redis, &["grant-admin", &bob], "").await;
    succeeded(&out, "grant-admin");
    admin_users(&bob_api).await.expect("bob is an admin");
    let out = admin(&redis, &["revoke-admin", &bob], "").await;
    succeeded(&out, "revoke-admin");
    admin_users(&bob_api).await.expect_code(ErrorCode::NotAdmin);

    // disable closes bob's socket; login is refused; enable lets him back.
    let bob_user = TestUser {
        id: bob_auth.user.id,
        name: bob.clone(),
        password: PASSWORD.into(),
        token: bob_auth.token.clone(),
        session_id: bob_auth.session_id.clone(),
        api: bob_api.clone(),
    };
    let mut ws = server.ws(&bob_user).await;
    let out = admin(&redis, &["disable", &bob], "").await;
    succeeded(&out, "disable");
    assert!(out.stdout.contains("(disabled)"), "{}", out.stdout);
    ws.expect_close_code(close::UNAUTHORIZED).await;
    bob_api.me().await.expect_code(ErrorCode::Unauthorized);
    server
        .api()
        .login(&bob, PASSWORD, None)
        .await
        .expect_code(ErrorCode::AccountDisabled);
    let out = admin(&redis, &["enable", &bob], "").await;
    succeeded(&out, "enable");
    let bob_auth = server
        .api()
        .login(&bob, PASSWORD, None)
        .await
        .expect("enabled");

    // reset-password revokes bob's sessions.
    let out = admin(&redis, &["reset-password", &bob], "reset by the operator\n").await;
    succeeded(&out, "reset-password");
    server
        .api_with(&bob_auth.token)
        .me()
        .await
        .expect_code(ErrorCode::Unauthorized);
    server
        .api()
        .login(&bob, "reset by the operator", None)
        .await
        .expect("new password");
    let out = admin(
        &redis,
        &["reset-password", "nobody_here"],
        "some new password\n",
    )
    .await;
    assert!(!out.ok && out.stderr.contains("no user"), "{}", out.stderr);

    // create-invite: the code on stdout lets exactly `uses` accounts in.
    let out = admin(
        &redis,
        &["create-invite", "--uses", "2", "--expires-in", "1h"],
        "",
    )
    .await;
    succeeded(&out, "create-invite");
    let code = out.stdout.trim().to_owned();
    for _ in 0..2 {
        register_with(&server, &unique_name("inv"), Some(&code))
            .await
            .expect("register with the code");
    }
    register_with(&server, &unique_name("inv"), Some(&code))
        .await
        .expect_code(ErrorCode::InvalidInvite);
    let out = admin(&redis, &["create-invite", "--expires-in", "1y"], "").await;
    assert!(!out.ok, "{}", out.stdout);

    // export and import: refused into a store that holds data.
    let out = admin(&redis, &["export"], "").await;
    succeeded(&out, "export");
    assert!(out.stdout.starts_with("{\"type\":\"chat-export\""));
    let file = std::env::temp_dir().join(format!("chat-export-{}.jsonl", unique_id()));
    std::fs::write(&file, &out.stdout).unwrap();
    let out = admin(&redis, &["import", file.to_str().unwrap()], "").await;
    assert!(
        !out.ok && out.stderr.contains("already holds"),
        "{}",
        out.stderr
    );
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_on_the_embedded_store_say_what_to_do() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["admin", "list-users"])
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("redis_url") && stderr.contains("/api/v1/admin/export"),
        "{stderr}"
    );
}
